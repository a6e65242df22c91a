"""Read-after-write on a Sui API whose reads lag execution.

GraphQL documents that "there may be a delay between transaction finality and when GraphQL requests
reflect its effects" and asks clients to poll ``Query.transaction`` before dependent reads; gRPC list
and object reads come from a full node's index the same way. Two rules follow, and they live here:

1. What a transaction changed (new versions, the gas coin) is taken from its effects
   (``ExecutedTransaction``), never read back.
2. Before a read that depends on a transaction (or on an object someone else just created), wait with
   bounded exponential back-off until the read side has it; past the bound, raise ``ReadLagTimeout``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from chain.errors import ObjectNotFound, ReadLagTimeout
from chain.reader import ChainReader, ObjectRef

DEFAULT_WAIT_SECONDS = 30.0  # GraphQL's indexer is usually a checkpoint (≈0.25-1 s) behind; be generous
DEFAULT_FIRST_DELAY_SECONDS = 0.05
DEFAULT_MAX_DELAY_SECONDS = 1.0


@dataclass(frozen=True)
class ReadLagPolicy:
    """How long and how often to poll before giving up on the read side."""

    timeout_seconds: float = DEFAULT_WAIT_SECONDS
    first_delay_seconds: float = DEFAULT_FIRST_DELAY_SECONDS
    max_delay_seconds: float = DEFAULT_MAX_DELAY_SECONDS
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        if self.timeout_seconds < 0 or self.first_delay_seconds <= 0 or self.max_delay_seconds < self.first_delay_seconds:
            raise ValueError("read-lag policy needs timeout >= 0 and 0 < first delay <= max delay")
        if self.multiplier < 1:
            raise ValueError("read-lag back-off multiplier must be at least 1")


DEFAULT_READ_LAG_POLICY = ReadLagPolicy()
Sleep = Callable[[float], Awaitable[None]]


async def poll_until(
    probe: Callable[[], Awaitable[bool]],
    what: str,
    policy: ReadLagPolicy = DEFAULT_READ_LAG_POLICY,
    *,
    sleep: Sleep = asyncio.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Call ``probe`` until it returns true, backing off between calls; ``ReadLagTimeout`` past the bound."""
    deadline = clock() + policy.timeout_seconds
    delay = policy.first_delay_seconds
    while not await probe():
        remaining = deadline - clock()
        if remaining <= 0:
            raise ReadLagTimeout(f"the read side did not catch up with {what} within {policy.timeout_seconds:g} s")
        await sleep(min(delay, remaining))
        delay = min(delay * policy.multiplier, policy.max_delay_seconds)


async def wait_for_transaction(
    reader: ChainReader, digest: str, policy: ReadLagPolicy = DEFAULT_READ_LAG_POLICY, *, sleep: Sleep = asyncio.sleep
) -> None:
    """Return once reads through ``reader`` reflect transaction ``digest``."""
    await poll_until(lambda: reader.transaction_indexed(digest), f"transaction {digest}", policy, sleep=sleep)


async def wait_for_object(
    reader: ChainReader, object_id: str, policy: ReadLagPolicy = DEFAULT_READ_LAG_POLICY, *, sleep: Sleep = asyncio.sleep
) -> ObjectRef:
    """The reference of an object another party just created, once the read side has it."""
    found: list[ObjectRef] = []

    async def visible() -> bool:
        try:
            found.append(await reader.object_ref(object_id))
        except ObjectNotFound:
            return False
        return True

    await poll_until(visible, f"object {object_id}", policy, sleep=sleep)
    return found[-1]
