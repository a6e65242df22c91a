"""Shared database fixtures. Everything else belongs in each test directory's own conftest.

    postgres_url   (session)  DATABASE_URL, else an embedded PostgreSQL in a temp dir
    redis_url      (session)  REDIS_URL, else an embedded Redis on a unix socket
    redis_cluster_url (session)  a real 3-master Redis Cluster on loopback (devtools/embedded_redis_cluster.py)
    database_url   (session)  a throwaway database on that server, migrated once; dropped at the end
    database       (function) an open, migrated ``Database`` whose tables are empty for each test

With an external server the session creates its own database (``memwal_test_<random>``) so tests
never touch real data; if the role may not CREATE DATABASE, the given database is used and its
tables are emptied before every test.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

from devtools.embedded_databases import start_embedded_redis
from devtools.embedded_redis_cluster import redis_cluster
from devtools.scratch_postgres import scratch_database, temporary_embedded_postgres
from relayer.database.migrations import apply_migrations
from relayer.database.pool import Database, connect

# Throwaway data: durability settings off make each test's commits much cheaper.
_TEST_SERVER_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
_TABLES = ("vector_entries", "remember_jobs", "delegate_key_cache", "accounts", "indexer_state", "owner_tokens",
           "oauth_clients", "oauth_authorizations", "oauth_tokens", "forgotten_memories")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    external = os.environ.get("DATABASE_URL")
    if external:
        yield external
        return
    with temporary_embedded_postgres("memwal-test-postgres-", _TEST_SERVER_SETTINGS) as url:
        yield url


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("REDIS_URL")
    if external:
        yield external
        return
    server = start_embedded_redis(tmp_path_factory.mktemp("redis"))
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """REDIS_URL of a 3-master cluster (REDIS_CLUSTER=1): any node; clients learn the slot map from it."""
    with redis_cluster(tmp_path_factory.mktemp("redis-cluster"), masters=3) as nodes:
        yield nodes.url


@contextlib.asynccontextmanager
async def throwaway_database(server_url: str) -> AsyncIterator[str]:
    """A fresh, migrated database on ``server_url``'s server, dropped on exit; the given database itself
    (migrated, not dropped) when the role may not CREATE DATABASE."""
    async with contextlib.AsyncExitStack() as stack:
        try:
            url = await stack.enter_async_context(scratch_database(server_url, prefix="memwal_test"))
        except asyncpg.InsufficientPrivilegeError:
            url = server_url
        connection = await asyncpg.connect(url)
        try:
            await apply_migrations(connection)
        finally:
            await connection.close()
        yield url


@pytest.fixture(scope="session")
async def database_url(postgres_url: str) -> AsyncIterator[str]:
    async with throwaway_database(postgres_url) as url:
        yield url


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(f"TRUNCATE {', '.join(_TABLES)}")
    finally:
        await connection.close()
    opened = await connect(database_url, min_size=1, max_size=4, command_timeout=60, migrate=False)
    try:
        yield opened
    finally:
        await opened.close()
