"""The asyncpg pool every repository shares, with the pgvector codec on each connection.

Repositories never touch asyncpg errors: they borrow a connection through ``Database.connection()``
or ``Database.transaction()``, which translate failures (see ``errors.map_database_errors``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from pgvector.asyncpg import register_vector

from relayer.database.errors import DatabaseError, map_database_errors
from relayer.database.migrations import apply_migrations

DEFAULT_MIN_SIZE = 1
DEFAULT_MAX_SIZE = 10
DEFAULT_COMMAND_TIMEOUT_SECONDS = 30.0
DEFAULT_CONNECT_TIMEOUT_SECONDS = 10.0


class Database:
    """An open pool. Create with ``connect()``; close with ``close()``."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """Borrow a connection (autocommit) for the block."""
        with map_database_errors():
            async with self._pool.acquire() as connection:
                yield connection

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """Borrow a connection inside one READ COMMITTED transaction, committed when the block ends."""
        with map_database_errors():
            async with self._pool.acquire() as connection:
                async with connection.transaction():
                    yield connection

    async def close(self) -> None:
        with map_database_errors():
            await self._pool.close()

    @property
    def size(self) -> int:
        return self._pool.get_size()


def affected_rows(command_tag: str) -> int:
    """Rows touched by a statement, from asyncpg's command tag (e.g. ``"DELETE 3"`` -> 3)."""
    return int(command_tag.rsplit(" ", 1)[-1])


async def _keep_session(connection: asyncpg.Connection) -> None:
    """Replaces asyncpg's reset query (``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL``), one
    round trip per release. Nothing here leaves session state behind: settings are ``set_config(…, true)``
    (transaction-local), advisory locks are ``pg_advisory_xact_lock``, no cursor outlives its transaction and
    no pooled connection LISTENs (tests/relayer/database/test_pool.py checks). asyncpg still rolls back a
    transaction left open before calling this.
    """


async def _prepare_connection(connection: asyncpg.Connection) -> None:
    try:
        await register_vector(connection)
    except ValueError as error:
        # asyncpg raises ValueError("unknown type: public.vector") when the extension is missing.
        raise DatabaseError("the pgvector extension is not installed; run the migrations first") from error


async def connect(
    url: str,
    *,
    min_size: int = DEFAULT_MIN_SIZE,
    max_size: int = DEFAULT_MAX_SIZE,
    command_timeout: float = DEFAULT_COMMAND_TIMEOUT_SECONDS,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_SECONDS,
    migrate: bool = True,
) -> Database:
    """Open a pool on ``url``; with ``migrate`` (the boot path) bring the schema up to date first.

    Raises ``DatabaseUnavailable`` when the server cannot be reached and ``MigrationError`` when the
    schema cannot be migrated.
    """
    if not 0 <= min_size <= max_size or max_size < 1:
        raise ValueError(f"invalid pool size min={min_size} max={max_size}")
    with map_database_errors():
        if migrate:
            # Migrations run on a connection of their own: the pool's codec setup needs the
            # vector type, which the first migration creates.
            # No statement timeout: building an index on a large existing table may take minutes.
            connection = await asyncpg.connect(url, timeout=connect_timeout)
            try:
                await apply_migrations(connection)
            finally:
                await connection.close()
        pool = await asyncpg.create_pool(
            url,
            min_size=min_size,
            max_size=max_size,
            command_timeout=command_timeout,
            timeout=connect_timeout,
            init=_prepare_connection,
            reset=_keep_session,
        )
    return Database(pool)
