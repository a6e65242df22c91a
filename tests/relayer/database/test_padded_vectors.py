"""Zero-padded local vectors in the real schema: pgvector's ``<=>`` on the stored 1536-d rows ranks and
measures exactly as on the model's own 384-d vectors (a vector(384) table), and as numpy's cosine."""

from __future__ import annotations

import asyncpg
import numpy as np
import pytest
from pgvector.asyncpg import register_vector

from bench.retrieval_set import MEMORIES, QUERIES
from relayer.database.pool import Database
from relayer.database.vectors import VectorEntry, VectorStore
from relayer.local_embeddings import load_local_model, padded

pytestmark = pytest.mark.database

OWNER = "0x" + "c" * 64
NAMESPACE = "padding"
K = 10


async def test_padded_rows_rank_and_measure_as_the_native_vectors(database: Database, database_url: str) -> None:
    model = load_local_model()
    ids = list(MEMORIES)
    memories = model.embed([MEMORIES[i] for i in ids])
    queries = model.embed([query.text for query in QUERIES[:12]])
    store = VectorStore(database)
    for memory_id, vector in zip(ids, memories, strict=True):
        await store.upsert(VectorEntry(memory_id, OWNER, f"blob-{memory_id}", np.array(padded(vector), dtype=np.float32), NAMESPACE))
    connection = await asyncpg.connect(database_url)
    try:
        await register_vector(connection)
        await connection.execute("CREATE TEMP TABLE native (id text PRIMARY KEY, embedding vector(384))")
        await connection.executemany("INSERT INTO native VALUES ($1, $2)", list(zip(ids, memories, strict=True)))
        for query in queries:
            stored = await store.search(OWNER, NAMESPACE, padded(query), K)
            native = await connection.fetch("SELECT id, embedding <=> $1 AS distance FROM native ORDER BY 2, 1 LIMIT $2", query, K)
            exact = 1.0 - memories.astype(np.float64) @ query.astype(np.float64)
            expected = [ids[index] for index in np.argsort(exact, kind="stable")[:K]]
            assert [hit.id for hit in stored] == [row["id"] for row in native] == expected
            for hit, row in zip(stored, native, strict=True):
                assert hit.distance == pytest.approx(row["distance"], abs=1e-6)
                assert hit.distance == pytest.approx(exact[ids.index(hit.id)], abs=1e-5)
    finally:
        await connection.close()
