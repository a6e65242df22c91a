"""Fixtures for route tests: the localnet, aggregator faults, and one in-process relayer per module."""

from __future__ import annotations

from contextlib import AsyncExitStack

import pytest_asyncio

from tests.relayer.in_process import open_relayer
from tests.sidecar.conftest import faults, http, localnet  # the same fixtures, shared

__all__ = ["faults", "http", "localnet"]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def relayer(localnet, database_url, redis_url):
    async with AsyncExitStack() as stack:
        yield await open_relayer(localnet, stack, database_url=database_url, redis_url=redis_url)
