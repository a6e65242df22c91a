"""One dev stack (localnet + databases + relayer + sidecar + indexer, all separate processes) per module."""

from __future__ import annotations

import asyncio
import os

import pytest_asyncio

from devtools.devstack import DevStack

E2E_RELAYER_ENV = {
    # The SDK polls job status; upstream's 30/min delegate limit would throttle a fast test run.
    "RATE_LIMIT_DELEGATE_KEY_PER_MINUTE": "2000",
    "RATE_LIMIT_REQUESTS_PER_MINUTE": "2000",
    "RATE_LIMIT_REQUESTS_PER_HOUR": "20000",
    "JOB_LEASE_SECS": "5",
    "LOG_FORMAT": "json",
}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(tmp_path_factory, request):
    extra = dict(E2E_RELAYER_ENV)
    extra.update(getattr(request.module, "RELAYER_ENV", {}))
    data_dir = tmp_path_factory.mktemp("devstack")
    async with DevStack(
        data_dir,
        database_url=os.environ.get("DATABASE_URL") or None,
        redis_url=os.environ.get("REDIS_URL") or None,
        relayer_env=extra,
        sui_protocol=getattr(request.module, "SUI_PROTOCOL", "jsonrpc"),
    ) as running:
        yield running
        await asyncio.sleep(0)
