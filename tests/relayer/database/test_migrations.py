from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from devtools.scratch_postgres import scratch_database
from relayer.database.errors import MigrationError
from relayer.database.migrations import Migration, apply_migrations, load_migrations

pytestmark = pytest.mark.database


@pytest.fixture
async def empty_database_url(postgres_url: str) -> AsyncIterator[str]:
    """A brand-new database on the test server, for tests that must start from no schema."""
    try:
        async with scratch_database(postgres_url, prefix="memwal_migrate") as url:
            yield url
    except asyncpg.InsufficientPrivilegeError:
        pytest.fail("these tests need a role allowed to CREATE DATABASE")


async def _columns(connection: asyncpg.Connection, table: str) -> dict[str, str]:
    rows = await connection.fetch(
        "SELECT column_name, udt_name FROM information_schema.columns WHERE table_name = $1", table
    )
    return {row["column_name"]: row["udt_name"] for row in rows}


class TestLoadMigrations:
    def test_files_are_ordered_and_versioned(self) -> None:
        migrations = load_migrations()
        versions = [migration.version for migration in migrations]
        assert versions == sorted(versions)
        assert versions[0] == "001"
        assert all(migration.sql.strip() for migration in migrations)

    def test_no_plaintext_column_anywhere(self) -> None:
        for migration in load_migrations():
            assert "plaintext" not in migration.sql.lower().replace("never plaintext", "")


class TestApplyMigrations:
    async def test_first_run_creates_schema_and_second_run_is_a_no_op(self, empty_database_url: str) -> None:
        connection = await asyncpg.connect(empty_database_url)
        try:
            first = await apply_migrations(connection)
            second = await apply_migrations(connection)
            assert first == [migration.version for migration in load_migrations()]
            assert second == []
            entries = await _columns(connection, "vector_entries")
            assert entries["embedding"] == "vector"
            assert {"id", "owner", "blob_id", "namespace", "blob_size_bytes", "importance", "created_at", "updated_at"} <= set(entries)
            assert "plaintext" not in entries
            jobs = await _columns(connection, "remember_jobs")
            assert jobs["ciphertext"] == "bytea"
            assert {"kind", "idempotency_key", "attempts", "lease_owner", "lease_until", "object_id", "agent_id"} <= set(jobs)
            cache = await _columns(connection, "delegate_key_cache")
            assert "expires_at" in cache
            indexes = {row["indexname"] for row in await connection.fetch("SELECT indexname FROM pg_indexes")}
            assert {
                "idx_vector_entries_owner", "idx_vector_entries_blob_id", "idx_vector_entries_owner_namespace",
                "idx_vector_entries_embedding", "idx_remember_jobs_owner", "idx_remember_jobs_status",
                "idx_remember_jobs_owner_status_updated", "idx_remember_jobs_owner_idempotency_key",
            } <= indexes
            method = await connection.fetchval(
                "SELECT am.amname FROM pg_class c JOIN pg_am am ON am.oid = c.relam WHERE c.relname = 'idx_vector_entries_embedding'"
            )
            assert method == "hnsw"
        finally:
            await connection.close()

    async def test_a_new_deployment_indexes_halfvec_an_existing_one_keeps_its_index(
        self, empty_database_url: str, postgres_url: str
    ) -> None:
        connection = await asyncpg.connect(empty_database_url)
        try:
            before_halfvec = tuple(m for m in load_migrations() if m.version < "008")
            await apply_migrations(connection, before_halfvec)
            await connection.execute(
                "INSERT INTO vector_entries (id, owner, blob_id, embedding) VALUES ('m', '0x1', 'b', $1::vector)",
                "[" + ",".join(["0.5"] * 1536) + "]")
            assert await apply_migrations(connection) == [m.version for m in load_migrations() if m.version >= "008"]
            kept = await connection.fetchval("SELECT indexdef FROM pg_indexes WHERE indexname = 'idx_vector_entries_embedding'")
            assert "vector_cosine_ops" in kept  # rows were there: rebuilding is the operator's step
        finally:
            await connection.close()
        async with scratch_database(postgres_url, prefix="memwal_migrate") as fresh_url:
            fresh = await asyncpg.connect(fresh_url)
            try:
                await apply_migrations(fresh)
                new = await fresh.fetchval("SELECT indexdef FROM pg_indexes WHERE indexname = 'idx_vector_entries_embedding'")
                assert "halfvec(1536)" in new and "halfvec_cosine_ops" in new
            finally:
                await fresh.close()

    async def test_concurrent_boots_apply_each_migration_once(self, empty_database_url: str) -> None:
        connections = [await asyncpg.connect(empty_database_url) for _ in range(3)]
        try:
            results = await asyncio.gather(*(apply_migrations(connection) for connection in connections))
            applied = sorted(version for result in results for version in result)
            assert applied == [migration.version for migration in load_migrations()]
            count = await connections[0].fetchval("SELECT count(*) FROM schema_migrations")
            assert count == len(load_migrations())
        finally:
            for connection in connections:
                await connection.close()

    async def test_status_check_constraint_is_enforced(self, empty_database_url: str) -> None:
        connection = await asyncpg.connect(empty_database_url)
        try:
            await apply_migrations(connection)
            with pytest.raises(asyncpg.CheckViolationError, match="status"):
                await connection.execute(
                    "INSERT INTO remember_jobs (id, owner, status) VALUES ('j', 'o', 'exploded')"
                )
        finally:
            await connection.close()

    async def test_edited_applied_migration_is_refused(self, empty_database_url: str) -> None:
        connection = await asyncpg.connect(empty_database_url)
        try:
            await apply_migrations(connection)
            first = load_migrations()[0]
            edited = (Migration(first.version, first.name, first.sql + "\n-- edited\n"), *load_migrations()[1:])
            with pytest.raises(MigrationError, match="changed after it was applied"):
                await apply_migrations(connection, edited)
        finally:
            await connection.close()

    async def test_failing_migration_rolls_back_everything(self, empty_database_url: str) -> None:
        connection = await asyncpg.connect(empty_database_url)
        try:
            broken = (*load_migrations(), Migration("999", "broken", "CREATE TABLE nope (id int); SELECT * FROM missing_table;"))
            with pytest.raises(MigrationError, match="missing_table"):
                await apply_migrations(connection, broken)
            exists = await connection.fetchval("SELECT to_regclass('vector_entries') IS NOT NULL")
            assert exists is False
            assert await connection.fetchval("SELECT to_regclass('nope') IS NOT NULL") is False
        finally:
            await connection.close()

    async def test_adopts_a_database_created_by_upstream(self, empty_database_url: str) -> None:
        connection = await asyncpg.connect(empty_database_url)
        try:
            # Upstream's first migration: vector_entries without namespace/size/importance columns.
            await connection.execute(
                "CREATE EXTENSION IF NOT EXISTS vector;"
                " CREATE TABLE vector_entries (id TEXT PRIMARY KEY, owner TEXT NOT NULL, blob_id TEXT NOT NULL,"
                " embedding vector(1536) NOT NULL, created_at TIMESTAMPTZ NOT NULL DEFAULT now());"
                " INSERT INTO vector_entries (id, owner, blob_id, embedding)"
                " VALUES ('old', 'o', 'b', array_fill(0.5, ARRAY[1536])::vector)"
            )
            await apply_migrations(connection)
            row = await connection.fetchrow("SELECT namespace, blob_size_bytes, importance FROM vector_entries")
            assert (row["namespace"], row["blob_size_bytes"], row["importance"]) == ("default", 0, 0.5)
        finally:
            await connection.close()
