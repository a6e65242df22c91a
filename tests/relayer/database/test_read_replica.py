"""DATABASE_READ_URL: recall's vector search reads the replica pool; every write and every other read stays on
the primary. Two databases on one server stand for the primary and its replica, so what each query reads
is visible (the replica is deliberately behind)."""

from __future__ import annotations

import numpy as np
import pytest

from relayer.database.pool import connect
from relayer.database.vectors import VectorEntry, VectorStore
from relayer.settings import Settings
from tests.conftest import throwaway_database

pytestmark = pytest.mark.database

OWNER = "0x" + "c" * 64
EMBEDDING = np.linspace(0.1, 1.0, 1536, dtype=np.float32)


def test_the_setting_is_optional():
    assert Settings.from_environ({}).database_read_url is None
    assert Settings.from_environ({"DATABASE_READ_URL": "postgresql://replica/memwal"}).database_read_url == (
        "postgresql://replica/memwal"
    )


async def test_search_reads_the_replica_and_writes_go_to_the_primary(database, postgres_url):
    async with throwaway_database(postgres_url) as replica_url:
        replica = await connect(replica_url, min_size=1, max_size=2, command_timeout=60, migrate=False)
        try:
            store = VectorStore(database, reads=replica)
            entry = VectorEntry("job-1", OWNER, "blob-1", EMBEDDING, "notes", 10)
            await store.upsert(entry)
            assert (await store.stats(OWNER, "notes")).memory_count == 1  # the primary has it
            assert await store.search(OWNER, "notes", EMBEDDING, 5) == []  # the replica does not, yet
            await VectorStore(replica).upsert(entry)  # replication catches up
            hits = await store.search(OWNER, "notes", EMBEDDING, 5)
            assert [hit.blob_id for hit in hits] == ["blob-1"]
        finally:
            await replica.close()


async def test_without_a_replica_search_reads_the_primary(database):
    store = VectorStore(database)
    await store.upsert(VectorEntry("job-2", OWNER, "blob-2", EMBEDDING, "notes", 10))
    assert [hit.blob_id for hit in await store.search(OWNER, "notes", EMBEDDING, 5)] == ["blob-2"]
