"""Forget while a remember job is queued, through the real relayer app with its workers stopped (a crashed
relayer). Its own module: no other relayer's workers may run meanwhile, or they would claim the job."""

from __future__ import annotations

from contextlib import AsyncExitStack

import pytest

from localnet.cli import create_account
from tests.relayer.in_process import open_relayer
from tests.relayer.test_memory_extensions import forget
from tests.relayer.test_routes import recall, wait_done

pytestmark = pytest.mark.database


class TestForgetWhileTheJobRuns:
    async def test_a_memory_forgotten_while_queued_is_never_uploaded_nor_indexed(self, localnet, database_url, redis_url):
        """The workers are down (a crashed relayer) between the 202 and the upload; the forget is acknowledged;
        then the workers resume the job: it ends without a blob, and the memory never becomes recallable."""
        async with AsyncExitStack() as stack:
            stopped = await open_relayer(localnet, stack, database_url=database_url, redis_url=redis_url, start_jobs=False)
            alice = await create_account(localnet, label="forget-mid-job")
            accepted = await stopped.call(alice, "POST", "/api/remember", {"text": "a half-written memory", "namespace": "mid"})
            assert accepted.status_code == 202
            job_id = accepted.json()["job_id"]
            early = await forget(stopped, alice, job_id)
            assert early.status_code == 200, early.text
            assert (early.json()["blob_id"], early.json()["blob_status"]) == (None, "not_uploaded")
            stopped.sidecar_paths.clear()
            stopped.services.job_runner.start()
            done = await wait_done(stopped, alice, job_id)
            assert done["status"] == "done" and "blob_id" not in done
            assert "/walrus/upload" not in stopped.operations()
            assert (await recall(stopped, alice, "half-written memory", "mid"))["results"] == []
            assert (await forget(stopped, alice, job_id)).json() == early.json()
