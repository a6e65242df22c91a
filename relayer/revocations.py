"""The relayer follows the chain's revocation events itself and drops the accounts they name from its cache.

Why the relayer and not the indexer: the indexer is a separate process the enclave does not run, and the only
channel from it to the relayer would pass through PostgreSQL, which sits outside the enclave and could hold
notifications back. Reading the events from the chain (the relayer already reads accounts there) needs no
durable cursor: the cache starts empty with the process, so events from before it started are already
reflected in every account read since. The first pass reads the event history once; then each poll costs
one event query per kind.

A failed poll is logged and retried at the next interval; the cache TTL bounds the revocation delay either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from chain.errors import ChainError
from chain.reader import ACCOUNT_CHANGE_EVENTS, ChainReader, EventCursor
from relayer.account_cache import AccountCache

logger = logging.getLogger("memwal.revocations")

PAGE_SIZE = 50
MAX_PAGES_PER_POLL = 20  # a long history is read over several polls instead of one long pass


class RevocationFollower:
    def __init__(
        self, chain: ChainReader, package_id: str, cache: AccountCache, *, poll_seconds: float,
        on_failure: Callable[[], None] = lambda: None,
    ) -> None:
        self._chain = chain
        self._package_id = package_id
        self._cache = cache
        self._poll_seconds = poll_seconds
        self._on_failure = on_failure
        self._cursors: dict[str, EventCursor | None] = dict.fromkeys(ACCOUNT_CHANGE_EVENTS)
        self._task: asyncio.Task[None] | None = None

    async def poll_once(self) -> int:
        """Read every new revocation event (up to a page cap per kind) and invalidate; returns how many were read."""
        seen = 0
        for kind in ACCOUNT_CHANGE_EVENTS:
            for _ in range(MAX_PAGES_PER_POLL):
                page = await self._chain.account_change_events(self._package_id, kind, self._cursors[kind], PAGE_SIZE)
                for event in page.events:
                    dropped = self._cache.invalidate_account(event.account_id)
                    if dropped:
                        logger.info("%s on %s: dropped %d cached resolution(s)", kind, event.account_id, dropped)
                seen += len(page.events)
                self._cursors[kind] = page.next_cursor
                if not page.has_next_page:
                    break
        return seen

    def start(self) -> None:
        if self._task is None and self._cache.enabled:
            self._task = asyncio.create_task(self._run(), name="revocation-follower")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.poll_once()
            except ChainError as exc:
                logger.warning("revocation poll failed (the cache TTL still bounds revocation): %s", exc)
                self._on_failure()
            await asyncio.sleep(self._poll_seconds)
