"""A whole in-process localnet (Sui, Walrus publisher + two aggregators, Seal key servers) per module."""

from __future__ import annotations

import httpx
import pytest_asyncio

from localnet.runner import run_localnet


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def localnet(tmp_path_factory):
    async with run_localnet(tmp_path_factory.mktemp("localnet")) as info:
        yield info


@pytest_asyncio.fixture(loop_scope="session")
async def http():
    async with httpx.AsyncClient() as client:
        yield client


@pytest_asyncio.fixture(loop_scope="session")
async def faults(localnet, http):
    """``await faults(index, {...})`` injects faults into aggregator ``index``; all are cleared afterwards."""
    urls = localnet["walrus_aggregator_urls"]

    async def inject(index: int, body: dict) -> None:
        response = await http.post(f"{urls[index]}/_localnet/faults", json=body)
        assert response.status_code == 200, response.text

    yield inject
    for url in urls:
        await http.delete(f"{url}/_localnet/faults")
