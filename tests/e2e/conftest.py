"""One dev stack (localnet + databases + relayer + sidecar + indexer, all separate processes) per module."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator

import pytest_asyncio

from devtools.devstack import DevStack
from tests.conftest import throwaway_database

E2E_RELAYER_ENV = {
    # The SDK polls job status; upstream's 30/min delegate limit would throttle a fast test run.
    "RATE_LIMIT_DELEGATE_KEY_PER_MINUTE": "2000",
    "RATE_LIMIT_REQUESTS_PER_MINUTE": "2000",
    "RATE_LIMIT_REQUESTS_PER_HOUR": "20000",
    "JOB_LEASE_SECS": "5",
    "BODY_READ_TIMEOUT_SECS": "2",  # the slow-body test waits this long
    "LOG_FORMAT": "json",
}


@contextlib.asynccontextmanager
async def open_stack(tmp_path_factory, *, relayer_env: dict[str, str] | None = None, sui_protocol: str | None = "graphql",
                     localnet_args: tuple[str, ...] = (), redis_url: str | None = None,
                     port: int = 0) -> AsyncIterator[DevStack]:
    """A running stack. On an external PostgreSQL (DATABASE_URL) each stack gets its own throwaway database:
    every stack runs a fresh localnet, and an indexer cursor or account rows left by another chain would
    make its results depend on test order."""
    async with contextlib.AsyncExitStack() as resources:
        server = os.environ.get("DATABASE_URL") or None
        database_url = await resources.enter_async_context(throwaway_database(server)) if server else None
        yield await resources.enter_async_context(DevStack(
            tmp_path_factory.mktemp("devstack"),
            database_url=database_url,
            redis_url=redis_url or os.environ.get("REDIS_URL") or None,
            relayer_env={**E2E_RELAYER_ENV, **(relayer_env or {})},
            sui_protocol=sui_protocol,
            localnet_args=localnet_args,
            port=port,
        ))


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(tmp_path_factory, request):
    """A module's stack: its RELAYER_ENV, SUI_PROTOCOL (default graphql; None = leave it unset) and LOCALNET_ARGS."""
    async with open_stack(
        tmp_path_factory,
        relayer_env=getattr(request.module, "RELAYER_ENV", {}),
        sui_protocol=getattr(request.module, "SUI_PROTOCOL", "graphql"),
        localnet_args=getattr(request.module, "LOCALNET_ARGS", ()),
    ) as running:
        yield running
        await asyncio.sleep(0)
