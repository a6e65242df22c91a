"""The enclave's clock, kept honest with the parent's help but not at its mercy.

A Nitro enclave has no NTP; its clock starts from the hypervisor's and drifts. The relayer's ±300 s signature
window, SigV4 towards KMS and certificate checks depend on it. Like Evervault's enclaves, the runtime asks
the parent for the time (host_proxy/host_services.py, ``manifest.TIME_PORT``) and measures the round trip.
The parent is untrusted, so what it says is bounded three ways:

    round trip   a sample whose round trip exceeds ``max_round_trip_seconds`` is discarded (the midpoint
                 estimate is then at most half of it off)
    step         one accepted sample moves the clock by at most ``max_step_seconds``
    anchor       the corrected clock never leaves ``max_anchor_deviation_seconds`` around the time of the
                 enclave's own NSM attestation documents (the Nitro hypervisor signs it; the parent cannot
                 change it), advanced by the monotonic clock since

So a lying parent can move the clock by at most the anchor bound, slowly, and never arbitrarily.
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from attestation.document import AttestationDocument
from attestation.nsm import Attester
from host_proxy.addresses import Endpoint, connect_stream
from host_proxy.errors import ConnectError

logger = logging.getLogger("memwal.enclave.clock_sync")

MAGIC = b"MWT1"
REQUEST = struct.Struct(">4s16s")
ANSWER = struct.Struct(">4s16sQ")
Clock = Callable[[], datetime]


class TimeSampleRejected(Exception):
    """A sample from the parent was not used (too slow, malformed, or the channel failed)."""


@dataclass(frozen=True)
class TimeSyncLimits:
    max_round_trip_seconds: float = 0.25
    max_step_seconds: float = 0.5
    max_anchor_deviation_seconds: float = 30.0
    interval_seconds: float = 60.0


class SyncedClock:
    """``base()`` plus an offset that only :meth:`apply` moves, within the module's bounds. Call it for the time."""

    def __init__(self, base: Clock, *, monotonic: Callable[[], float] = time.monotonic, limits: TimeSyncLimits = TimeSyncLimits()) -> None:
        self._base = base
        self._monotonic = monotonic
        self.limits = limits
        self.offset_seconds = 0.0
        self._anchor: tuple[datetime, float] | None = None

    def __call__(self) -> datetime:
        return self._base() + timedelta(seconds=self.offset_seconds)

    def anchor(self, nsm_time: datetime) -> None:
        """The time in a document the NSM just signed: the reference the corrected clock stays near."""
        self._anchor = (nsm_time, self._monotonic())
        self.offset_seconds = self._bounded(self.offset_seconds)

    def apply(self, host_time: datetime, round_trip_seconds: float) -> float:
        """Use one sample; return the step taken in seconds (raise TimeSampleRejected if the round trip is too long)."""
        if not 0 <= round_trip_seconds <= self.limits.max_round_trip_seconds:
            raise TimeSampleRejected(f"round trip {round_trip_seconds:.3f} s exceeds {self.limits.max_round_trip_seconds:g} s")
        estimate = host_time + timedelta(seconds=round_trip_seconds / 2)
        wanted = (estimate - self._base()).total_seconds()
        step = max(-self.limits.max_step_seconds, min(self.limits.max_step_seconds, wanted - self.offset_seconds))
        previous = self.offset_seconds
        self.offset_seconds = self._bounded(previous + step)
        return self.offset_seconds - previous

    def _bounded(self, offset: float) -> float:
        if self._anchor is None:
            return offset
        nsm_time, at = self._anchor
        anchored_now = nsm_time + timedelta(seconds=self._monotonic() - at)
        deviation = (self._base() + timedelta(seconds=offset) - anchored_now).total_seconds()
        limit = self.limits.max_anchor_deviation_seconds
        if deviation > limit:
            return offset - (deviation - limit)
        if deviation < -limit:
            return offset + (-limit - deviation)
        return offset


async def sample_parent_time(endpoint: Endpoint, *, monotonic: Callable[[], float] = time.monotonic,
                             rng: Callable[[int], bytes] = os.urandom, timeout: float = 2.0) -> tuple[datetime, float]:  # fmt: skip
    """One request on the time channel: (the parent's time, the round trip in seconds)."""
    nonce = rng(16)
    try:
        reader, writer = await connect_stream(endpoint, timeout=timeout)
    except ConnectError as error:
        raise TimeSampleRejected(f"time channel: {error}") from None
    try:
        async with asyncio.timeout(timeout):
            started = monotonic()
            writer.write(REQUEST.pack(MAGIC, nonce))
            await writer.drain()
            answer = await reader.readexactly(ANSWER.size)
            round_trip = monotonic() - started
    except (TimeoutError, asyncio.IncompleteReadError, OSError) as error:
        raise TimeSampleRejected(f"time channel: {type(error).__name__}") from None
    finally:
        writer.close()
    magic, echoed, nanoseconds = ANSWER.unpack(answer)
    if magic != MAGIC or echoed != nonce:
        raise TimeSampleRejected("the parent's answer does not echo our request")
    return datetime.fromtimestamp(nanoseconds / 1e9, UTC), round_trip


def nsm_time(attester: Attester) -> datetime:
    """The timestamp of a document the NSM signs now (our own device: its signature need not be checked)."""
    raw = attester.attestation(user_data=None, nonce=None, public_key=None)
    return AttestationDocument.from_cose(raw).unverified_timestamp


def set_system_clock(moment: datetime) -> None:
    """Step CLOCK_REALTIME (the image's runtime runs as root in its own VM): the relayer's own time reads follow."""
    time.clock_settime(time.CLOCK_REALTIME, moment.timestamp())


async def keep_time(
    clock: SyncedClock, endpoint: Endpoint, attester: Attester, *, system_clock: Callable[[datetime], None] | None = None
) -> None:
    """Anchor to the NSM and take a parent sample every ``interval_seconds`` until cancelled; with
    ``system_clock``, also step the system clock to the corrected time (and fold the offset into it)."""
    while True:
        try:
            clock.anchor(await asyncio.to_thread(nsm_time, attester))
            host_time, round_trip = await sample_parent_time(endpoint)
            step = clock.apply(host_time, round_trip)
            if system_clock is not None and clock.offset_seconds:
                system_clock(clock())
                clock.offset_seconds = 0.0
            if abs(step) >= 0.05:
                logger.info("clock adjusted by %+.3f s (offset %+.3f s, round trip %.1f ms)", step, clock.offset_seconds,
                            round_trip * 1000)  # fmt: skip
        except TimeSampleRejected as error:
            logger.debug("time sample not used: %s", error)
        except Exception as error:  # noqa: BLE001 - keeping time must never stop the enclave
            logger.warning("time sync round failed: %s", type(error).__name__)
        await asyncio.sleep(clock.limits.interval_seconds)
