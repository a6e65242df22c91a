"""Scoped vector search: recall@10 and latency of three strategies on one synthetic table.

Scopes of 100 / 1 000 / 10 000 / 50 000 rows (times --scale) sit in one ``vector_entries`` table with
filler rows of other owners. Vectors are 1536-d, clustered around shared topic centres (every scope
draws from the same centres, so other owners' rows crowd each query: the HNSW-plus-filter worst
case). Ground truth is numpy's exact cosine top-10 inside the scope.

    naive            the upstream query, planner's choice, pgvector defaults (iterative scan off)
    hnsw_default     the same query with HNSW forced: what naive returns whenever the planner
                     picks the index (generic plans, stale statistics)
    hnsw_iterative   HNSW forced, ``iterative_scan = relaxed_order`` with default ef_search /
                     max_scan_tuples, candidates re-sorted (pgvector's documented filtered recipe)
    ours             ``relayer.database.vector_search.search_scope`` with its default tuning

Uses DATABASE_URL (a throwaway database is created and dropped there) or an embedded server.
``--scale 0.2`` shrinks every size for a quick run; the HNSW build dominates the full run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import numpy as np
from pgvector.asyncpg import register_vector

from bench.common import LatencySummary, print_table, time_async, write_report
from devtools.embedded_databases import start_embedded_postgres
from relayer.database.pool import Database, connect
from relayer.database.vector_search import EMBEDDING_DIMENSIONS, SearchTuning, search_scope

SCOPE_SIZES = (100, 1_000, 10_000, 50_000)
FILLER_ROWS = 10_000
FILLER_SCOPE = 250
TOPICS = 200
NOISE = 0.7  # per-vector noise relative to the unit-norm topic centre
K = 10
WARMUP_QUERIES = 3
SEED = 20260101

_NAIVE = (
    "SELECT id FROM vector_entries WHERE owner = $1 AND namespace = $2 ORDER BY embedding <=> $3 LIMIT $4"
)
_ITERATIVE = """
SELECT id FROM (
    SELECT id, embedding <=> $3 AS distance FROM vector_entries
    WHERE owner = $1 AND namespace = $2 ORDER BY embedding <=> $3 LIMIT $4
) AS candidates ORDER BY distance + 0
"""

Strategy = Callable[[Database, str, str, np.ndarray], Awaitable[list[str]]]


async def naive(database: Database, owner: str, namespace: str, query: np.ndarray) -> list[str]:
    async with database.connection() as connection:
        return [row["id"] for row in await connection.fetch(_NAIVE, owner, namespace, query, K)]


async def hnsw_default(database: Database, owner: str, namespace: str, query: np.ndarray) -> list[str]:
    async with database.transaction() as connection:
        await connection.execute(
            "SELECT set_config('enable_sort', 'off', true), set_config('enable_bitmapscan', 'off', true),"
            " set_config('enable_seqscan', 'off', true)"
        )
        # Own statement text: asyncpg's statement cache would otherwise reuse naive's cached plan,
        # which PostgreSQL does not re-plan when enable_* settings change.
        return [row["id"] for row in await connection.fetch(_NAIVE + " -- hnsw_default", owner, namespace, query, K)]


async def hnsw_iterative(database: Database, owner: str, namespace: str, query: np.ndarray) -> list[str]:
    async with database.transaction() as connection:
        await connection.execute(
            "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true),"
            " set_config('enable_sort', 'off', true), set_config('enable_bitmapscan', 'off', true),"
            " set_config('enable_seqscan', 'off', true)"
        )
        return [row["id"] for row in await connection.fetch(_ITERATIVE, owner, namespace, query, K)]


async def ours(database: Database, owner: str, namespace: str, query: np.ndarray) -> list[str]:
    return [hit.id for hit in await search_scope(database, owner, namespace, query, K, SearchTuning())]


STRATEGIES: dict[str, Strategy] = {
    "naive": naive, "hnsw_default": hnsw_default, "hnsw_iterative": hnsw_iterative, "ours": ours,
}


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


def _dataset(scale: float, rng: np.random.Generator) -> tuple[dict[str, np.ndarray], np.ndarray, list[tuple]]:
    centres = _unit(rng.standard_normal((TOPICS, EMBEDDING_DIMENSIONS))).astype(np.float32)
    noise_scale = NOISE / np.sqrt(EMBEDDING_DIMENSIONS)

    def draw(count: int) -> np.ndarray:
        topics = rng.integers(0, TOPICS, count)
        return (centres[topics] + noise_scale * rng.standard_normal((count, EMBEDDING_DIMENSIONS))).astype(np.float32)

    scopes: dict[str, np.ndarray] = {}
    records: list[tuple] = []
    for size in SCOPE_SIZES:
        rows = max(K, int(size * scale))
        vectors = draw(rows)
        name = f"scope-{size}"
        scopes[name] = vectors
        records += [(f"{name}-{i}", "0xbench", name, f"blob-{name}-{i}", vector, 1024) for i, vector in enumerate(vectors)]
    filler = draw(int(FILLER_ROWS * scale))
    records += [
        (f"filler-{i}", f"0x{i // FILLER_SCOPE:064x}", "default", f"blob-f{i}", vector, 1024) for i, vector in enumerate(filler)
    ]
    return scopes, centres, records


async def _load(url: str, records: list[tuple]) -> dict[str, float]:
    connection = await asyncpg.connect(url)
    try:
        await register_vector(connection)
        definition = await connection.fetchval(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'idx_vector_entries_embedding'"
        )
        await connection.execute("DROP INDEX idx_vector_entries_embedding")
        started = time.perf_counter()
        columns = ["id", "owner", "namespace", "blob_id", "embedding", "blob_size_bytes"]
        for offset in range(0, len(records), 5_000):
            await connection.copy_records_to_table("vector_entries", records=records[offset:offset + 5_000], columns=columns)
        copied = time.perf_counter() - started
        # 1536-d vectors are TOASTed, so the heap looks tiny and the planner picks no parallel
        # workers for the build unless told (environment.md §2).
        await connection.execute("ALTER TABLE vector_entries SET (parallel_workers = 1)")
        await connection.execute("SET maintenance_work_mem = '2GB'")
        await connection.execute("SET max_parallel_maintenance_workers = 1")
        started = time.perf_counter()
        await connection.execute(definition)
        built = time.perf_counter() - started
        await connection.execute("VACUUM (ANALYZE) vector_entries")
        return {"copy_seconds": round(copied, 1), "hnsw_build_seconds": round(built, 1)}
    finally:
        await connection.close()


async def _measure(url: str, scopes: dict[str, np.ndarray], queries: int, rng: np.random.Generator) -> list[dict]:
    database = await connect(url, min_size=1, max_size=1, command_timeout=120, migrate=False)
    results = []
    try:
        for name, vectors in scopes.items():
            unit = _unit(vectors)
            picks = rng.integers(0, len(vectors), queries + WARMUP_QUERIES)
            noise = (0.3 * NOISE / np.sqrt(EMBEDDING_DIMENSIONS)) * rng.standard_normal((len(picks), EMBEDDING_DIMENSIONS))
            query_vectors = (vectors[picks] + noise).astype(np.float32)
            truths = []
            for query in query_vectors:
                order = np.argsort(1.0 - unit @ _unit(query), kind="stable")[:K]
                truths.append({f"{name}-{int(index)}" for index in order})
            for strategy_name, strategy in STRATEGIES.items():
                latencies, recalls, returned = [], [], []
                for index, query in enumerate(query_vectors):
                    elapsed, ids = await time_async(lambda: strategy(database, "0xbench", name, query))
                    if index < WARMUP_QUERIES:
                        continue
                    latencies.append(elapsed)
                    returned.append(len(ids))
                    recalls.append(len(truths[index] & set(ids)) / len(truths[index]))
                summary = LatencySummary.of(latencies)
                results.append({
                    "strategy": strategy_name, "scope_rows": len(vectors), "recall_at_10": float(np.mean(recalls)),
                    "min_recall": float(np.min(recalls)), "mean_rows_returned": float(np.mean(returned)),
                    **asdict(summary),
                })
                print(f"  {strategy_name:15s} scope={len(vectors):6d} recall={np.mean(recalls):.3f} p50={summary.p50_ms:.1f}ms", flush=True)
    finally:
        await database.close()
    return results


async def _run(url: str, scale: float, queries: int) -> dict:
    rng = np.random.default_rng(SEED)
    scopes, _, records = _dataset(scale, rng)
    print(f"search_quality: {len(records)} rows, scopes {[len(v) for v in scopes.values()]}", flush=True)
    database = await connect(url, migrate=True)  # creates the schema
    await database.close()
    load = await _load(url, records)
    print(f"  loaded: {load}", flush=True)
    results = await _measure(url, scopes, queries, rng)
    threshold = SearchTuning().exact_threshold(K, len(records))
    return {"table_rows": len(records), "scale": scale, "queries_per_cell": queries, "k": K,
            "ours_exact_threshold_rows": threshold, "load": load, "tuning": asdict(SearchTuning()), "results": results}


async def _with_database(scale: float, queries: int) -> dict:
    external = os.environ.get("DATABASE_URL")
    if external:
        name = f"memwal_bench_{secrets.token_hex(4)}"
        admin = await asyncpg.connect(external)
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()
        parts = urlsplit(external)
        try:
            return await _run(urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment)), scale, queries)
        finally:
            admin = await asyncpg.connect(external)
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()
    root = Path(tempfile.mkdtemp(prefix="memwal-bench-postgres-"))
    try:
        server = start_embedded_postgres(
            root / "data",
            settings={"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off", "shared_buffers": "1GB"},
        )
        try:
            return await _run(server.url, scale, queries)
        finally:
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench search_quality", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every scope and the filler (default 1)")
    parser.add_argument("--queries", type=int, default=60, help="timed queries per strategy and scope (default 60)")
    options = parser.parse_args()
    started = time.perf_counter()
    report = asyncio.run(_with_database(options.scale, options.queries))
    report["total_seconds"] = round(time.perf_counter() - started, 1)
    rows = [
        (row["strategy"], row["scope_rows"], row["recall_at_10"], row["min_recall"], row["mean_rows_returned"], row["p50_ms"], row["p99_ms"])
        for row in sorted(report["results"], key=lambda row: (row["scope_rows"], row["strategy"]))
    ]
    print_table(
        f"scoped top-{K} in a {report['table_rows']}-row table (exact below {report['ours_exact_threshold_rows']} rows for 'ours')",
        ["strategy", "scope", "recall@10", "min recall", "rows", "p50 ms", "p99 ms"], rows,
    )
    path = write_report("search_quality", report)
    print(f"\nwrote {path.name} under build/bench/ in {report['total_seconds']} s")


if __name__ == "__main__":
    main()
