from __future__ import annotations

import asyncio
import socket

import asyncpg
import pytest

from relayer.database.errors import (
    ConstraintViolation,
    DatabaseError,
    DatabaseTimeout,
    DatabaseUnavailable,
    map_database_errors,
)
from relayer.database.pool import Database, affected_rows, connect

pytestmark = pytest.mark.database


def _closed_tcp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class TestConnect:
    async def test_connection_refused_is_unavailable(self) -> None:
        url = f"postgresql://postgres@127.0.0.1:{_closed_tcp_port()}/postgres"
        with pytest.raises(DatabaseUnavailable, match="unreachable"):
            await connect(url, migrate=False)

    async def test_missing_unix_socket_is_unavailable(self, tmp_path) -> None:  # type: ignore[no-untyped-def]
        url = f"postgresql://postgres@/postgres?host={tmp_path}"
        with pytest.raises(DatabaseUnavailable):
            await connect(url, migrate=True)

    async def test_unknown_database_is_an_error(self, postgres_url: str) -> None:
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(postgres_url)
        url = urlunsplit((parts.scheme, parts.netloc, "/no_such_database_here", parts.query, parts.fragment))
        with pytest.raises(DatabaseError, match="no_such_database_here"):
            await connect(url, migrate=False)

    async def test_invalid_pool_size_is_refused(self, database_url: str) -> None:
        with pytest.raises(ValueError, match="invalid pool size"):
            await connect(database_url, min_size=5, max_size=2, migrate=False)

    async def test_pool_connections_speak_pgvector(self, database: Database) -> None:
        async with database.connection() as connection:
            value = await connection.fetchval("SELECT '[1,2,3]'::vector")
        assert value.to_list() == [1.0, 2.0, 3.0]


class TestDatabase:
    async def test_transaction_commits_on_success_and_rolls_back_on_error(self, database: Database) -> None:
        async with database.transaction() as connection:
            await connection.execute("INSERT INTO indexer_state (key, value) VALUES ('kept', '1')")
        with pytest.raises(RuntimeError, match="boom"):
            async with database.transaction() as connection:
                await connection.execute("INSERT INTO indexer_state (key, value) VALUES ('dropped', '1')")
                raise RuntimeError("boom")
        async with database.connection() as connection:
            keys = {row["key"] for row in await connection.fetch("SELECT key FROM indexer_state")}
        assert keys == {"kept"}

    async def test_unique_violation_is_constraint_violation(self, database: Database) -> None:
        with pytest.raises(ConstraintViolation, match="duplicate key"):
            async with database.connection() as connection:
                await connection.execute("INSERT INTO indexer_state (key, value) VALUES ('k', '1'), ('k', '2')")

    async def test_statement_timeout_is_database_timeout(self, database: Database) -> None:
        with pytest.raises(DatabaseTimeout, match="canceled"):
            async with database.transaction() as connection:
                await connection.execute("SET LOCAL statement_timeout = '50ms'")
                await connection.execute("SELECT pg_sleep(2)")

    async def test_client_side_timeout_is_database_timeout(self, database: Database) -> None:
        with pytest.raises(DatabaseTimeout, match="timed out"):
            async with database.connection() as connection:
                await connection.execute("SELECT pg_sleep(2)", timeout=0.05)

    async def test_syntax_error_is_a_plain_database_error(self, database: Database) -> None:
        with pytest.raises(DatabaseError, match="42601") as caught:
            async with database.connection() as connection:
                await connection.execute("SELEKT 1")
        assert not isinstance(caught.value, DatabaseUnavailable)

    async def test_closed_pool_is_unavailable(self, database_url: str) -> None:
        opened = await connect(database_url, migrate=False)
        await opened.close()
        with pytest.raises(DatabaseUnavailable, match="unusable"):
            async with opened.connection():
                pass

    async def test_terminated_backend_is_unavailable(self, database: Database) -> None:
        with pytest.raises(DatabaseUnavailable):
            async with database.connection() as connection:
                backend = await connection.fetchval("SELECT pg_backend_pid()")
                async with database.connection() as killer:
                    assert await killer.fetchval("SELECT pg_terminate_backend($1)", backend) is True
                await asyncio.sleep(0.05)
                await connection.fetchval("SELECT 1")
        async with database.connection() as connection:  # the pool recovers with a new connection
            assert await connection.fetchval("SELECT 1") == 1


class TestRelease:
    """No reset query on release (one round trip saved per borrow); session state is transaction-scoped."""

    async def test_release_sends_nothing_to_the_server(self, database_url: str) -> None:
        database = await connect(database_url, min_size=1, max_size=1, migrate=False)
        try:
            async with database.connection() as connection:
                pid = await connection.fetchval("SELECT pg_backend_pid()")
                await connection.execute("SELECT 'release-marker'")
            observer = await asyncpg.connect(database_url)
            try:
                last = await observer.fetchval("SELECT query FROM pg_stat_activity WHERE pid = $1", pid)
            finally:
                await observer.close()
            assert last == "SELECT 'release-marker'"  # asyncpg's default would show its RESET ALL query here
        finally:
            await database.close()

    async def test_transaction_local_settings_and_an_abandoned_transaction_do_not_leak(self, database_url: str) -> None:
        database = await connect(database_url, min_size=1, max_size=1, migrate=False)
        try:
            async with database.transaction() as connection:
                await connection.execute("SELECT set_config('enable_seqscan', 'off', true)")
            async with database.connection() as connection:
                assert await connection.fetchval("SHOW enable_seqscan") == "on"
                await connection.execute("BEGIN")  # left open on purpose: asyncpg rolls it back on release
                await connection.execute("SELECT set_config('enable_sort', 'off', true)")
            async with database.connection() as connection:
                assert await connection.fetchval("SHOW enable_sort") == "on"
                assert not connection.is_in_transaction()
        finally:
            await database.close()


class TestErrorMapping:
    def test_oserror_maps_to_unavailable(self) -> None:
        with pytest.raises(DatabaseUnavailable, match="Connection refused"):
            with map_database_errors():
                raise ConnectionRefusedError(111, "Connection refused")

    def test_too_many_connections_maps_to_unavailable(self) -> None:
        with pytest.raises(DatabaseUnavailable, match="53300"):
            with map_database_errors():
                raise asyncpg.TooManyConnectionsError("sorry, too many clients already")

    def test_admin_shutdown_maps_to_unavailable(self) -> None:
        with pytest.raises(DatabaseUnavailable, match="57P01"):
            with map_database_errors():
                raise asyncpg.AdminShutdownError("terminating connection due to administrator command")

    def test_unrelated_errors_pass_through(self) -> None:
        with pytest.raises(KeyError):
            with map_database_errors():
                raise KeyError("not ours")


class TestAffectedRows:
    def test_reads_the_count_from_the_command_tag(self) -> None:
        assert affected_rows("DELETE 3") == 3
        assert affected_rows("UPDATE 0") == 0
        assert affected_rows("INSERT 0 7") == 7
