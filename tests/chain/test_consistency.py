"""chain.consistency: bounded back-off until the read side catches up (time and sleep injected)."""

from __future__ import annotations

import pytest

from chain.consistency import ReadLagPolicy, poll_until, wait_for_object, wait_for_transaction
from chain.errors import ObjectNotFound, ReadLagTimeout
from chain.reader import ObjectRef


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class TestPollUntil:
    async def test_backs_off_exponentially_up_to_the_cap(self):
        time = FakeTime()
        answers = iter([False] * 6 + [True])

        async def probe() -> bool:
            return next(answers)

        policy = ReadLagPolicy(timeout_seconds=100, first_delay_seconds=0.1, max_delay_seconds=0.5)
        await poll_until(probe, "thing", policy, sleep=time.sleep, clock=time.clock)
        assert time.sleeps == [0.1, 0.2, 0.4, 0.5, 0.5, 0.5]

    async def test_gives_up_at_the_bound_without_oversleeping(self):
        time = FakeTime()

        async def never() -> bool:
            return False

        policy = ReadLagPolicy(timeout_seconds=1.0, first_delay_seconds=0.3, max_delay_seconds=0.3)
        with pytest.raises(ReadLagTimeout, match="transaction abc"):
            await poll_until(never, "transaction abc", policy, sleep=time.sleep, clock=time.clock)
        assert sum(time.sleeps) == pytest.approx(1.0)
        assert time.sleeps[-1] == pytest.approx(0.1)

    async def test_no_sleep_when_already_visible(self):
        time = FakeTime()

        async def yes() -> bool:
            return True

        await poll_until(yes, "x", sleep=time.sleep, clock=time.clock)
        assert time.sleeps == []

    @pytest.mark.parametrize("arguments", [
        {"timeout_seconds": -1}, {"first_delay_seconds": 0}, {"first_delay_seconds": 2, "max_delay_seconds": 1},
        {"multiplier": 0.5},
    ])
    def test_policy_rejects_nonsense(self, arguments):
        with pytest.raises(ValueError):
            ReadLagPolicy(**arguments)


class LaggingReader:
    """Answers like a read side that indexes after ``visible_after`` polls."""

    def __init__(self, visible_after: int) -> None:
        self.polls = 0
        self.visible_after = visible_after

    async def transaction_indexed(self, digest: str) -> bool:
        self.polls += 1
        return self.polls > self.visible_after

    async def object_ref(self, object_id: str) -> ObjectRef:
        self.polls += 1
        if self.polls <= self.visible_after:
            raise ObjectNotFound(object_id)
        return ObjectRef(object_id, 7, "digest")


class TestWaiting:
    async def test_wait_for_transaction_polls_the_reader(self):
        reader = LaggingReader(3)
        time = FakeTime()
        await wait_for_transaction(reader, "D", ReadLagPolicy(first_delay_seconds=0.01), sleep=time.sleep)  # type: ignore[arg-type]
        assert reader.polls == 4 and len(time.sleeps) == 3

    async def test_wait_for_object_returns_its_reference(self):
        reader = LaggingReader(2)
        time = FakeTime()
        reference = await wait_for_object(reader, "0x1", ReadLagPolicy(first_delay_seconds=0.01), sleep=time.sleep)  # type: ignore[arg-type]
        assert reference == ObjectRef("0x1", 7, "digest")

    async def test_wait_for_object_times_out(self):
        reader = LaggingReader(10**9)
        with pytest.raises(ReadLagTimeout, match="object 0x1"):
            await wait_for_object(reader, "0x1", ReadLagPolicy(timeout_seconds=0.05, first_delay_seconds=0.01))  # type: ignore[arg-type]
