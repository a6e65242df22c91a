"""Crash recovery: a relayer killed mid-job resumes or fails it cleanly on restart — never a lost upload, never
a duplicate blob for one job — and a dead sidecar takes the relayer down with it (the watchdog).
"""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import time
import uuid
from pathlib import Path

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


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(child) for child in text]
    return found


class TestSidecarWatchdog:
    @staticmethod
    async def kill_sidecar(stack) -> int:
        """SIGKILL the relayer's sidecar child; returns the relayer's exit status."""
        relayer = stack.relayer.process
        assert relayer is not None and stack.relayer.alive
        if not Path(f"/proc/{relayer.pid}/task").exists():
            pytest.skip("needs /proc to find the sidecar child")
        sidecars = [pid for pid in _children(relayer.pid)
                    if b"sidecar" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        assert len(sidecars) == 1, sidecars
        os.kill(sidecars[0], signal.SIGKILL)
        try:
            await asyncio.wait_for(relayer.wait(), 30)
        finally:
            if not stack.relayer.alive:
                await stack.start_relayer()  # leave the module's stack healthy for the next test and teardown
        return relayer.returncode

    async def test_relayer_exits_when_its_sidecar_dies(self, stack):
        await self.kill_sidecar(stack)
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{stack.relayer_url}/health", timeout=5)).status_code == 200  # restarted

    async def test_exit_status_reports_the_failure(self, stack):
        # A supervisor with Restart=on-failure must see the death as a failure.
        assert await self.kill_sidecar(stack) != 0
