"""Crash recovery: a relayer killed mid-job resumes or fails it cleanly on restart — never a lost upload, never
a duplicate blob for one job. (A killed sidecar is restarted by the relayer: tests/e2e/test_outages.py.)
"""

from __future__ import annotations

import asyncio
import collections
import time
import uuid

import httpx
import pytest
import pytest_asyncio

from chain.jsonrpc import JsonRpcChainReader
from localnet.cli import create_account
from tests.e2e.test_negative import Caller

pytestmark = [pytest.mark.e2e, pytest.mark.database, pytest.mark.slow]

JOBS = 8


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def http():
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


async def job_statuses(caller: Caller, job_ids: list[str]) -> dict[str, dict]:
    response = await caller.call("POST", "/api/remember/bulk/status", {"job_ids": job_ids})
    assert response.status_code == 200, response.text
    return {entry["job_id"]: entry for entry in response.json()["results"]}


class TestRelayerKilledMidJob:
    async def test_jobs_resume_once_after_sigkill(self, stack, http):
        seen: list[httpx.Response] = []
        caller = Caller(stack, await create_account(stack.info, label="recovery"), http, seen)
        namespace = "recovery-" + uuid.uuid4().hex[:8]
        texts = [f"recovery memory {i} {uuid.uuid4().hex[:6]}" for i in range(JOBS)]
        job_ids = list(await asyncio.gather(*(caller.remember(text, namespace) for text in texts)))
        await stack.stop_relayer(kill=True)  # SIGKILL the relayer and its sidecar, mid-upload
        assert not stack.relayer.alive
        await stack.start_relayer()

        deadline = time.monotonic() + 90
        while True:
            statuses = await job_statuses(caller, job_ids)
            if all(entry["status"] in ("done", "failed") for entry in statuses.values()):
                break
            assert time.monotonic() < deadline, statuses
            await asyncio.sleep(0.5)
        assert [statuses[j]["status"] for j in job_ids] == ["done"] * JOBS, statuses

        chain = JsonRpcChainReader(stack.info["sui_rpc_url"], http=http)
        owned = await chain.owned_blobs(caller.owner, stack.info["walrus_package_id"])
        counts = collections.Counter(blob.blob_id for blob in owned)
        assert {statuses[j]["blob_id"]: counts[statuses[j]["blob_id"]] for j in job_ids} == {
            statuses[j]["blob_id"]: 1 for j in job_ids
        }
        assert len(owned) == JOBS  # no stray blob object either
        assert len({statuses[j]["blob_id"] for j in job_ids}) == JOBS

        recalled = await caller.recall("recovery memory", namespace, limit=50)
        assert sorted(r["text"] for r in recalled["results"]) == sorted(texts)
        assert (await caller.stats(namespace))["memory_count"] == JOBS
        assert all(r.status_code != 500 for r in seen)
