"""bench/remember_stages.py's arithmetic: stage samples joined per memory, the "(rest)" rows, shares, and the
log lines it reads back."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from bench.process_profile import busiest_functions
from bench.remember_stages import Submitted, profile, read_stage_samples
from memwal_common.logs import JsonFormatter
from memwal_common.stage_timing import LOGGER_NAME, StageSample, StageTimer


def samples(key: str, **stages: float) -> list[StageSample]:
    return [StageSample(name.replace("__", "."), key, seconds) for name, seconds in stages.items()]


def test_each_memory_joins_its_request_and_job_stages_and_the_rests_are_what_is_untimed() -> None:
    submitted = [Submitted("job-1", "req-1", 1.0)]
    recorded = [
        *samples("req-1", request__auth=0.1, request__handler=0.8, request__encrypt=0.5, request__embed=0.3,
                 request__embed_rest=0.0, job__enqueue=0.1),
        *samples("job-1", job__queued=0.5, job__total=2.0, job__upload=1.5, upload__publish=0.6, job__index=0.2),
        StageSample("upload.journal_write", "job-1", 0.1), StageSample("upload.journal_write", "job-1", 0.1),
        StageSample("job.index", "someone-else", 9.0),
    ]
    report = profile(submitted, recorded)
    rows = {row["stage"]: row for row in report["stages"]}
    assert report["memories_profiled"] == 1
    assert rows["memory"]["mean_ms"] == pytest.approx(3500.0)  # POST 1.0 + queued 0.5 + run 2.0
    assert rows["request.(rest)"]["mean_ms"] == pytest.approx(100.0)  # 1.0 - auth - handler
    assert rows["handler.(rest)"]["mean_ms"] == pytest.approx(200.0)  # embed overlaps encrypt: not subtracted
    assert rows["upload.journal_write"]["mean_ms"] == pytest.approx(200.0)  # two writes add up
    assert rows["upload.(rest)"]["mean_ms"] == pytest.approx(700.0)  # 1.5 - publish - journal writes
    assert rows["job.(rest)"]["mean_ms"] == pytest.approx(300.0)  # 2.0 - upload - index
    assert rows["job.queued"]["share_of_memory_wall"] == pytest.approx(0.5 / 3.5)
    assert rows["job.index"]["p90_ms"] == pytest.approx(200.0)


def test_a_job_without_its_queue_wait_is_left_out() -> None:
    # A retried job's first attempt is not profiled (its queue wait is logged on the first attempt only).
    report = profile([Submitted("job-1", "req-1", 1.0)], samples("job-1", job__total=2.0))
    assert report == {"memories_profiled": 0, "stages": []}


def test_stage_lines_are_read_back_from_a_json_log(tmp_path: Path) -> None:
    log = tmp_path / "relayer.log"
    handler = logging.FileHandler(log)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(LOGGER_NAME)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        StageTimer(enabled=True).record("upload.publish", "job-1", 0.25)
        logging.getLogger("memwal.jobs").warning("stage=job.index key=not-from-the-stage-logger seconds=1.0")
    finally:
        logger.removeHandler(handler)
        handler.close()
    with log.open("a") as file:
        file.write("not json " + json.dumps({"logger": LOGGER_NAME}) + "\n")
    assert read_stage_samples(log) == [StageSample("upload.publish", "job-1", 0.25)]


def test_busiest_functions_count_own_samples_and_project_functions_under_them() -> None:
    collapsed = "\n".join([
        "main (relayer/__main__.py:1);encrypt (sidecar/seal.py:2);pairing (ext/c.py:3) 6",
        "main (relayer/__main__.py:1);encrypt (sidecar/seal.py:9);send (ext/d.py:4) 1",
        "main (relayer/__main__.py:1);send (ext/d.py:4) 3",
        "main (relayer/__main__.py:1);select (selectors.py:468) 50",  # an idle event loop: not busy
    ])
    summary = busiest_functions(collapsed)
    assert summary["busy_samples"] == 10
    assert summary["own"][0] == ("pairing (ext/c.py:3)", 0.6)
    under = dict(summary["under"])
    assert under == {"encrypt (sidecar/seal.py)": 0.7}  # both lines of encrypt; main (all samples) is an entry point
