"""read_bounded_body: the size cap, the minimum rate, and draining an oversized body before its 413."""

from __future__ import annotations

import asyncio

import pytest
from starlette.requests import Request

from relayer.errors import BodyTimeout, BodyTooLarge
from relayer.signed_routes import BodyLimits, read_bounded_body

LIMITS = BodyLimits(max_bytes=1000, read_timeout_seconds=5.0, min_bytes_per_second=1_000_000, drain_bytes=10_000)
CHUNK = b"x" * 500


def request_with_body(chunks: list[bytes], *, declared: int | None, stall_after: int | None = None) -> tuple[Request, list[int]]:
    """A request whose body arrives in ``chunks``; the returned list counts the chunks the app pulled."""
    pulled = [0]

    async def receive() -> dict:
        index = pulled[0]
        if stall_after is not None and index >= stall_after:
            await asyncio.sleep(3600)
        pulled[0] += 1
        if index >= len(chunks):
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": chunks[index], "more_body": index < len(chunks) - 1}

    headers = [] if declared is None else [(b"content-length", str(declared).encode())]
    return Request({"type": "http", "method": "POST", "path": "/", "headers": headers}, receive), pulled


async def test_a_body_within_the_cap_is_returned_whole() -> None:
    request, _ = request_with_body([CHUNK, CHUNK], declared=1000)
    assert await read_bounded_body(request, LIMITS) == CHUNK * 2


async def test_an_oversized_declared_body_within_the_drain_cap_is_read_to_its_end_before_the_413() -> None:
    chunks = [CHUNK] * 8  # 4000 bytes: over the 1000-byte cap, under the 10 000-byte drain cap
    request, pulled = request_with_body(chunks, declared=4000)
    with pytest.raises(BodyTooLarge):
        await read_bounded_body(request, LIMITS)
    assert pulled[0] == len(chunks)  # nothing left unread to make the kernel reset the connection


async def test_a_body_declared_past_the_drain_cap_is_refused_unread() -> None:
    request, pulled = request_with_body([CHUNK] * 40, declared=20_000)
    with pytest.raises(BodyTooLarge):
        await read_bounded_body(request, LIMITS)
    assert pulled[0] == 0


async def test_an_undeclared_body_growing_past_the_cap_is_drained_up_to_the_drain_cap_only() -> None:
    request, pulled = request_with_body([CHUNK] * 100, declared=None)  # chunked, 50 000 bytes
    with pytest.raises(BodyTooLarge):
        await read_bounded_body(request, LIMITS)
    assert 1000 < pulled[0] * len(CHUNK) <= LIMITS.drain_bytes + len(CHUNK)


async def test_a_drain_that_stalls_still_answers_413() -> None:
    limits = BodyLimits(max_bytes=1000, read_timeout_seconds=0.05, min_bytes_per_second=1_000_000, drain_bytes=10_000)
    request, pulled = request_with_body([CHUNK] * 8, declared=4000, stall_after=2)
    with pytest.raises(BodyTooLarge):
        await read_bounded_body(request, limits)
    assert pulled[0] == 2  # the third chunk never came; the answer did not wait for it past the deadline


async def test_a_body_below_the_minimum_rate_is_408() -> None:
    limits = BodyLimits(max_bytes=1000, read_timeout_seconds=0.05, min_bytes_per_second=1_000_000)
    request, _ = request_with_body([CHUNK, CHUNK], declared=1000, stall_after=1)
    with pytest.raises(BodyTimeout):
        await read_bounded_body(request, limits)
