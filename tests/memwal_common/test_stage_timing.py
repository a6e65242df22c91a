"""memwal_common.stage_timing: stage lines are logged only when enabled, carry ids and seconds only, and parse back."""

from __future__ import annotations

import logging

import pytest

from memwal_common.stage_timing import DISABLED, LOGGER_NAME, StageSample, StageTimer, parse_stage_line


class SteppingClock:
    def __init__(self, *readings: float) -> None:
        self.readings = list(readings)

    def __call__(self) -> float:
        return self.readings.pop(0)


class TestStageTimer:
    def test_disabled_logs_nothing_and_reads_no_clock(self, caplog: pytest.LogCaptureFixture) -> None:
        timer = StageTimer(enabled=False, clock=SteppingClock())  # an empty clock raises if read
        with caplog.at_level(logging.INFO, logger=LOGGER_NAME), timer.stage("job.upload", "job-1"):
            pass
        timer.record("job.queued", "job-1", 1.0)
        timer.since("job.queued", "job-1", 0.0)
        assert caplog.records == []

    def test_a_stage_without_a_key_is_not_logged(self, caplog: pytest.LogCaptureFixture) -> None:
        timer = StageTimer(enabled=True, clock=SteppingClock())
        with caplog.at_level(logging.INFO, logger=LOGGER_NAME), timer.stage("request.encrypt", None):
            pass
        assert caplog.records == []

    def test_a_stage_that_raises_is_not_logged(self, caplog: pytest.LogCaptureFixture) -> None:
        timer = StageTimer(enabled=True, clock=SteppingClock(1.0, 2.0))
        with caplog.at_level(logging.INFO, logger=LOGGER_NAME), pytest.raises(RuntimeError):
            with timer.stage("upload.publish", "job-1"):
                raise RuntimeError("publisher down")
        assert caplog.records == []

    def test_enabled_logs_the_stage_key_and_clock_difference(self, caplog: pytest.LogCaptureFixture) -> None:
        timer = StageTimer(enabled=True, clock=SteppingClock(10.0, 10.25, 20.0, 20.5))
        with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
            with timer.stage("upload.publish", "job-1"):
                pass
            started = timer.now()
            timer.since("upload.gas_wait", "job-1", started)
        messages = [record.getMessage() for record in caplog.records]
        assert [parse_stage_line(message) for message in messages] == [
            StageSample("upload.publish", "job-1", 0.25), StageSample("upload.gas_wait", "job-1", 0.5)]

    def test_a_negative_duration_is_logged_as_zero(self, caplog: pytest.LogCaptureFixture) -> None:
        timer = StageTimer(enabled=True)
        with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
            timer.record("job.queued", "job-1", -0.5)  # clocks of two writers may disagree slightly
        assert parse_stage_line(caplog.records[0].getMessage()) == StageSample("job.queued", "job-1", 0.0)

    def test_a_stage_name_outside_the_alphabet_is_refused(self) -> None:
        with pytest.raises(ValueError, match="stage names"):
            StageTimer(enabled=True).record("Upload Publish", "job-1", 1.0)

    def test_long_keys_are_cut_to_the_cap(self, caplog: pytest.LogCaptureFixture) -> None:
        with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
            StageTimer(enabled=True).record("job.index", "k" * 500, 0.1)
        sample = parse_stage_line(caplog.records[0].getMessage())
        assert sample is not None and sample.key == "k" * 64

    def test_the_shared_disabled_timer_is_off(self) -> None:
        assert DISABLED.enabled is False


class TestParseStageLine:
    @pytest.mark.parametrize("message", ["", "job failed", "stage=job.index key=abc", "stage=BAD key=a seconds=1.0",
                                         "stage=job.index key=a seconds=-1.0"])
    def test_other_text_is_not_a_sample(self, message: str) -> None:
        assert parse_stage_line(message) is None

    def test_a_stage_line_parses(self) -> None:
        assert parse_stage_line("stage=upload.transfer key=4f1c seconds=0.012500") == StageSample(
            "upload.transfer", "4f1c", 0.0125)
