"""The enclave clock: parent samples bounded by round trip, step and the NSM's own time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from attestation.simulator import SimulatedNsm
from enclave.clock_sync import SyncedClock, TimeSampleRejected, TimeSyncLimits, nsm_time, sample_parent_time
from host_proxy.addresses import UnixEndpoint
from host_proxy.host_services import TimeServer

from .conftest import IMAGE_PCRS

BASE = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


class Machine:
    """A drifting enclave clock and its monotonic clock, both advanced by the test."""

    def __init__(self) -> None:
        self.wall = BASE
        self.elapsed = 0.0

    def advance(self, seconds: float, *, drift: float = 0.0) -> None:
        self.elapsed += seconds
        self.wall += timedelta(seconds=seconds + drift)


def clock(machine: Machine, **limits) -> SyncedClock:
    return SyncedClock(lambda: machine.wall, monotonic=lambda: machine.elapsed, limits=TimeSyncLimits(**limits))


class TestSyncedClock:
    def test_an_honest_parent_corrects_drift_step_by_step(self):
        machine = Machine()
        synced = clock(machine, max_step_seconds=0.5)
        machine.advance(60, drift=-2.0)  # the enclave clock fell 2 s behind the true time
        true_time = BASE + timedelta(seconds=60)
        steps = [synced.apply(true_time, 0.01) for _ in range(6)]
        assert steps == pytest.approx([0.5, 0.5, 0.5, 0.5, 0.005, 0.0])  # 2 s plus half the 10 ms round trip
        assert synced() == pytest.approx(true_time + timedelta(seconds=0.005), abs=timedelta(milliseconds=1))

    def test_a_slow_round_trip_is_not_used(self):
        synced = clock(Machine(), max_round_trip_seconds=0.25)
        with pytest.raises(TimeSampleRejected, match="round trip"):
            synced.apply(BASE + timedelta(hours=1), 0.3)
        assert synced.offset_seconds == 0

    def test_a_lying_parent_cannot_leave_the_nsm_anchor(self):
        machine = Machine()
        synced = clock(machine, max_step_seconds=0.5, max_anchor_deviation_seconds=30)
        synced.anchor(BASE)  # the NSM says the enclave clock is right
        for _ in range(1000):  # the parent pushes an hour forward, sample after sample
            machine.advance(1)
            synced.apply(machine.wall + timedelta(hours=1), 0.01)
        assert synced.offset_seconds == pytest.approx(30.0)
        deviation = synced() - (BASE + timedelta(seconds=machine.elapsed))
        assert deviation == pytest.approx(timedelta(seconds=30), abs=timedelta(milliseconds=1))


async def test_a_sample_over_the_time_channel(tmp_path):
    server = TimeServer(UnixEndpoint(str(tmp_path / "time.sock")), clock_ns=lambda: int(BASE.timestamp() * 1e9))
    await server.start()
    try:
        host_time, round_trip = await sample_parent_time(UnixEndpoint(str(tmp_path / "time.sock")))
    finally:
        await server.close()
    assert host_time == BASE and 0 <= round_trip < 5


def test_the_anchor_is_the_nsm_document_time(tee_pki):
    nsm = SimulatedNsm(pki=tee_pki, clock=lambda: BASE + timedelta(minutes=10), boot_pcrs=IMAGE_PCRS)
    assert nsm_time(nsm) == BASE + timedelta(minutes=10)
