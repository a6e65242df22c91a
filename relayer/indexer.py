"""``python -m relayer.indexer``: MemWal ``AccountCreated`` events into the ``accounts`` table.

Upstream's indexer, over the same ChainReader (GraphQL, gRPC or JSON-RPC). The cursor is stored in
``indexer_state('event_cursor')`` after each page, so a restart resumes where it stopped; inserts are
``ON CONFLICT DO NOTHING``, so replaying a page is harmless. Between passes it waits for
``POLL_INTERVAL_SECS``, or, on gRPC, until the node's event subscription says a new account appeared
(events are still read through the paged, cursor-resumable list: a subscription cannot resume).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
from collections.abc import AsyncIterator

import httpx

from chain.backends import make_chain_reader
from chain.errors import ChainError
from chain.reader import ChainReader, EventCursor, EventNotifier
from memwal_common.environment import SettingsError
from memwal_common.logs import configure_logging
from memwal_common.signals import shutdown_on_signals
from relayer.database.accounts import AccountIndex, IndexedAccount
from relayer.database.errors import DatabaseError
from relayer.database.pool import connect
from relayer.settings import Settings

logger = logging.getLogger("memwal.indexer")

PAGE_SIZE = 50
ERROR_BACKOFF_SECONDS = 5.0


async def index_once(chain: ChainReader, accounts: AccountIndex, package_id: str) -> tuple[int, bool]:
    """Index one page; returns (new accounts, whether another page is waiting)."""
    stored = await accounts.event_cursor()
    cursor = EventCursor.from_json(json.dumps(stored)) if stored else None
    page = await chain.account_created_events(package_id, cursor, PAGE_SIZE)
    inserted = await accounts.insert(IndexedAccount(event.account_id, event.owner) for event in page.events)
    if page.next_cursor is not None and page.next_cursor != cursor:
        await accounts.set_event_cursor(json.loads(page.next_cursor.to_json()))
    return inserted, page.has_next_page


@contextlib.asynccontextmanager
async def _wake_on_events(chain: ChainReader, package_id: str, wake: asyncio.Event) -> AsyncIterator[None]:
    """While inside, a background task sets ``wake`` for every new event the backend streams (gRPC only)."""
    if not isinstance(chain, EventNotifier):
        yield
        return

    async def listen() -> None:
        while True:
            try:
                async for _ in chain.account_created_notifications(package_id):
                    wake.set()
            except ChainError as exc:
                logger.info("event subscription ended (%s); polling meanwhile", exc)
            await asyncio.sleep(ERROR_BACKOFF_SECONDS)

    task = asyncio.create_task(listen(), name="indexer-subscription")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def run(chain: ChainReader, accounts: AccountIndex, package_id: str, poll_seconds: float, shutdown: asyncio.Event) -> None:
    wake = asyncio.Event()
    async with _wake_on_events(chain, package_id, wake):
        await _index_until_shutdown(chain, accounts, package_id, poll_seconds, shutdown, wake)


async def _index_until_shutdown(chain: ChainReader, accounts: AccountIndex, package_id: str, poll_seconds: float,
                                shutdown: asyncio.Event, wake: asyncio.Event) -> None:
    while not shutdown.is_set():
        wake.clear()
        try:
            inserted, more = await index_once(chain, accounts, package_id)
            if inserted:
                logger.info("indexed %d new account(s)", inserted)
            if more:
                continue
            delay = poll_seconds
        except (ChainError, DatabaseError) as exc:
            logger.warning("indexer pass failed: %s", exc)
            delay = ERROR_BACKOFF_SECONDS
        waiters = [asyncio.ensure_future(shutdown.wait()), asyncio.ensure_future(wake.wait())]
        try:
            await asyncio.wait(waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m relayer.indexer",
        description="Index MemWal AccountCreated events into PostgreSQL. Reads the relayer's settings (README "
        "'Configuration'): DATABASE_URL, MEMWAL_PACKAGE_ID, SUI_NETWORK, SUI_PROTOCOL [graphql] with SUI_GRAPHQL_URL, "
        "SUI_GRPC_URL or SUI_RPC_URL, "
        "POLL_INTERVAL_SECS [5], LOG_FORMAT.",
    )
    parser.parse_args(argv)
    try:
        settings = Settings.from_environ(os.environ)
        settings.validate_indexer()
    except SettingsError as exc:
        print(f"indexer: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_format)
    database_url = settings.database_url or ""  # validate_indexer() refused an unset one

    async def main_async() -> None:
        shutdown = shutdown_on_signals()
        database = await connect(
            database_url,
            max_size=2,
            command_timeout=settings.database_command_timeout_seconds,
            connect_timeout=settings.database_connect_timeout_seconds,
        )
        async with httpx.AsyncClient(timeout=settings.sui_timeout_seconds) as http:
            try:
                chain = make_chain_reader(settings.sui.url, protocol=settings.sui.protocol, http=http)
                try:
                    await run(chain, AccountIndex(database), settings.package_id, settings.indexer_poll_seconds, shutdown)
                finally:
                    await chain.aclose()
            finally:
                await database.close()

    asyncio.run(main_async())
    return 0


if __name__ == "__main__":
    sys.exit(main())
