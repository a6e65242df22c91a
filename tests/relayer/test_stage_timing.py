"""STAGE_TIMING_LOGS through the real relayer app: a remembered memory's request and job stages are logged under
the request id and the job id, with nothing else in the lines; without the setting nothing is logged."""

from __future__ import annotations

from contextlib import AsyncExitStack

import pytest

from localnet.cli import create_account
from memwal_common.stage_timing import LOGGER_NAME, parse_stage_line
from tests.relayer.in_process import open_relayer
from tests.relayer.test_routes import wait_done

pytestmark = pytest.mark.database

TEXT = "my cat is called Quasar"


async def remember_one(localnet, database_url, redis_url, env, caplog) -> tuple[str, str, list[str]]:
    async with AsyncExitStack() as stack:
        relayer = await open_relayer(localnet, stack, database_url=database_url, redis_url=redis_url, env=env)
        account = await create_account(localnet, label="stage-timing")
        with caplog.at_level("INFO", logger=LOGGER_NAME):
            accepted = await relayer.call(account, "POST", "/api/remember", {"text": TEXT, "namespace": "stages"})
            assert accepted.status_code == 202, accepted.text
            job_id = accepted.json()["job_id"]
            assert (await wait_done(relayer, account, job_id))["status"] == "done"
    lines = [record.getMessage() for record in caplog.records if record.name == LOGGER_NAME]
    return accepted.headers["x-request-id"], job_id, lines


class TestStageTimingLogs:
    async def test_request_and_job_stages_are_logged_by_id(self, localnet, database_url, redis_url, caplog):
        request_id, job_id, lines = await remember_one(localnet, database_url, redis_url, {"STAGE_TIMING_LOGS": "1"},
                                                       caplog)
        samples = [parse_stage_line(line) for line in lines]
        assert all(sample is not None for sample in samples)  # every line is a stage line
        by_key: dict[str, list[str]] = {}
        for sample in samples:
            assert sample is not None
            by_key.setdefault(sample.key, []).append(sample.stage)
        assert sorted(by_key[request_id]) == sorted(["request.auth", "request.handler", "request.summarize",
                                                     "request.encrypt", "request.embed", "request.embed_rest"])
        job_stages = by_key[job_id]
        assert job_stages[0] == "job.enqueue"
        assert {"job.queued", "job.forgotten_check", "job.upload", "job.mark_uploaded", "job.index",
                "job.mark_done", "job.total"} <= set(job_stages)
        assert not any("Quasar" in line for line in lines)

    async def test_nothing_is_logged_without_the_setting(self, localnet, database_url, redis_url, caplog):
        _request_id, _job_id, lines = await remember_one(localnet, database_url, redis_url, {}, caplog)
        assert lines == []
