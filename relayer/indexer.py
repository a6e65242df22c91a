"""``python -m relayer.indexer``: poll MemWal ``AccountCreated`` events into the ``accounts`` table.

Upstream's indexer, over the same ChainReader (JSON-RPC or GraphQL). The cursor is stored in
``indexer_state('event_cursor')`` after each page, so a restart resumes where it stopped; inserts are
``ON CONFLICT DO NOTHING``, so replaying a page is harmless.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys

import httpx

from chain.backends import make_chain_reader
from chain.errors import ChainError
from chain.reader import ChainReader, EventCursor
from memwal_common.environment import SettingsError, env_int
from memwal_common.signals import shutdown_on_signals
from relayer.database.accounts import AccountIndex, IndexedAccount
from relayer.database.errors import DatabaseError
from relayer.database.pool import connect

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


async def run(chain: ChainReader, accounts: AccountIndex, package_id: str, poll_seconds: float, shutdown: asyncio.Event) -> None:
    while not shutdown.is_set():
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
        try:
            await asyncio.wait_for(shutdown.wait(), delay)
        except TimeoutError:
            pass


def main(argv: list[str] | None = None) -> int:
    from memwal_common.logs import configure_logging

    parser = argparse.ArgumentParser(
        prog="python -m relayer.indexer",
        description="Index MemWal AccountCreated events into PostgreSQL. Env: DATABASE_URL, MEMWAL_PACKAGE_ID, "
        "SUI_PROTOCOL (jsonrpc|graphql), SUI_RPC_URL or SUI_GRAPHQL_URL, POLL_INTERVAL_SECS [5].",
    )
    parser.parse_args(argv)
    env = os.environ
    try:
        protocol = env.get("SUI_PROTOCOL", "jsonrpc")
        url = env.get("SUI_GRAPHQL_URL" if protocol == "graphql" else "SUI_RPC_URL", "")
        database_url = env.get("DATABASE_URL", "")
        package_id = env.get("MEMWAL_PACKAGE_ID", "")
        poll = env_int(env, "POLL_INTERVAL_SECS", 5, minimum=1)
        if not (url and database_url and package_id):
            raise SettingsError("DATABASE_URL, MEMWAL_PACKAGE_ID and the Sui URL are required")
    except SettingsError as exc:
        print(f"indexer: {exc}", file=sys.stderr)
        return 2
    configure_logging(env.get("LOG_FORMAT", "pretty"))

    async def main_async() -> None:
        shutdown = shutdown_on_signals()
        database = await connect(database_url, max_size=2)
        async with httpx.AsyncClient(timeout=15.0) as http:
            try:
                await run(make_chain_reader(url, protocol=protocol, http=http), AccountIndex(database), package_id, poll, shutdown)
            finally:
                await database.close()

    asyncio.run(main_async())
    return 0


if __name__ == "__main__":
    sys.exit(main())
