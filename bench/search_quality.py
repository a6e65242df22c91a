"""Scoped vector search at scale: recall@10 against exact, p50/p99 per scope size, HNSW build time.

``--rows`` rows are spread over ``--spaces`` owner+namespace spaces with Zipf-skewed sizes (a few large
spaces, a long tail of small ones), all in one ``vector_entries`` table. Vectors are 1536-d, clustered around
shared topic centres (every space draws from the same centres, so other owners' rows crowd each query: the
HNSW-plus-filter worst case). Queries go to the spaces whose sizes are nearest 10, 100, 1 000, 10 000 rows and
to the largest. Ground truth is numpy's exact cosine top-10 inside the space.

    exact            baseline: the scope read through its B-tree and sorted (recall 1.0 by construction)
    naive            the upstream query, planner's choice, pgvector defaults (iterative scan off)
    hnsw_iterative   HNSW forced, ``iterative_scan = relaxed_order`` with default ef_search /
                     max_scan_tuples, candidates re-sorted (pgvector's documented filtered recipe)
    ours             ``relayer.database.vector_search.search_scope`` with its default tuning

``--halfvec`` builds the HNSW index on ``embedding::halfvec(1536)`` instead (half the index) and runs ``ours``
with ``SearchTuning(hnsw_on_halfvec=True)``. Uses DATABASE_URL (a throwaway database is created and dropped
there) or an embedded server. The HNSW build dominates a large run; progress is printed as it goes.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

import asyncpg
import numpy as np
from pgvector.asyncpg import register_vector

from bench.common import Comparison, LatencySummary, print_table, time_async, write_report
from bench.throwaway_database import throwaway_database
from relayer.database.pool import Database, connect
from relayer.database.vector_search import (
    EMBEDDING_DIMENSIONS,
    EMBEDDING_INDEX,
    HALFVEC_INDEX_DEFINITION,
    VECTOR_INDEX_DEFINITION,
    SearchTuning,
    search_scope,
)

MEASURED_SIZES = (10, 100, 1_000, 10_000)
ZIPF_EXPONENT = 1.1
TOPICS = 200
NOISE = 0.7  # per-vector noise relative to the unit-norm topic centre
K = 10
WARMUP_QUERIES = 3
SEED = 20260101

_NAIVE = (
    "SELECT id FROM vector_entries WHERE owner = $1 AND namespace = $2 ORDER BY embedding <=> $3 LIMIT $4"
)
# OFFSET 0 fences the subquery, so the HNSW index cannot supply the order: the scope is read and sorted.
_EXACT = """
SELECT id FROM (
    SELECT id, embedding <=> $3 AS distance FROM vector_entries WHERE owner = $1 AND namespace = $2 OFFSET 0
) AS scope ORDER BY distance + 0 LIMIT $4
"""
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


async def exact(database: Database, owner: str, namespace: str, query: np.ndarray) -> list[str]:
    async with database.connection() as connection:
        return [row["id"] for row in await connection.fetch(_EXACT, owner, namespace, query, K)]


async def hnsw_iterative(database: Database, owner: str, namespace: str, query: np.ndarray) -> list[str]:
    async with database.transaction() as connection:
        await connection.execute(
            "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true),"
            " set_config('enable_sort', 'off', true), set_config('enable_bitmapscan', 'off', true),"
            " set_config('enable_seqscan', 'off', true)"
        )
        return [row["id"] for row in await connection.fetch(_ITERATIVE, owner, namespace, query, K)]


def ours(tuning: SearchTuning) -> Strategy:
    async def strategy(database: Database, owner: str, namespace: str, query: np.ndarray) -> list[str]:
        return [hit.id for hit in await search_scope(database, owner, namespace, query, K, tuning)]

    return strategy


def strategies(halfvec: bool) -> dict[str, Strategy]:
    # naive and hnsw_iterative order by the vector column: without a vector index (--halfvec) they are exact.
    vector_index = {} if halfvec else {"naive": naive, "hnsw_iterative": hnsw_iterative}
    return {"exact": exact, **vector_index, "ours": ours(SearchTuning(hnsw_on_halfvec=halfvec))}


def _unit(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


def space_sizes(rows: int, spaces: int) -> list[int]:
    """Zipf-skewed sizes (largest first) summing to ``rows``, every space at least one row."""
    if spaces < 1 or rows < spaces:
        raise ValueError("need at least one space and one row per space")
    weights = 1.0 / np.arange(1, spaces + 1) ** ZIPF_EXPONENT
    sizes = np.maximum(1, np.floor(weights / weights.sum() * rows)).astype(int)
    sizes[0] += rows - int(sizes.sum())  # rounding remainder to the largest (it stays the largest)
    return [int(size) for size in sizes]


def measured_spaces(sizes: list[int]) -> list[int]:
    """Indices of the spaces nearest each of MEASURED_SIZES, plus the largest; each once."""
    chosen = [0]
    for target in MEASURED_SIZES:
        if target >= sizes[0]:
            continue
        nearest = min(range(len(sizes)), key=lambda index: (abs(sizes[index] - target), index))
        if nearest not in chosen:
            chosen.append(nearest)
    return sorted(chosen, key=lambda index: sizes[index])


def _space(index: int) -> tuple[str, str]:
    return f"0x{index:064x}", "default"


def _dataset(sizes: list[int], rng: np.random.Generator) -> tuple[dict[int, np.ndarray], list[tuple]]:
    centres = _unit(rng.standard_normal((TOPICS, EMBEDDING_DIMENSIONS))).astype(np.float32)
    noise_scale = NOISE / np.sqrt(EMBEDDING_DIMENSIONS)
    measured = set(measured_spaces(sizes))
    spaces: dict[int, np.ndarray] = {}
    records: list[tuple] = []
    for index, size in enumerate(sizes):
        topics = rng.integers(0, TOPICS, size)
        vectors = (centres[topics] + noise_scale * rng.standard_normal((size, EMBEDDING_DIMENSIONS))).astype(np.float32)
        if index in measured:
            spaces[index] = vectors
        owner, namespace = _space(index)
        records += [(f"s{index}-{row}", owner, namespace, f"blob-{index}-{row}", vector, 1024) for row, vector in enumerate(vectors)]
    return spaces, records


async def _load(url: str, records: list[tuple], halfvec: bool) -> dict[str, float]:
    connection = await asyncpg.connect(url)
    try:
        await register_vector(connection)
        await connection.execute(f"DROP INDEX {EMBEDDING_INDEX}")
        started = time.perf_counter()
        columns = ["id", "owner", "namespace", "blob_id", "embedding", "blob_size_bytes"]
        for offset in range(0, len(records), 5_000):
            await connection.copy_records_to_table("vector_entries", records=records[offset:offset + 5_000], columns=columns)
            print(f"  copied {min(offset + 5_000, len(records))}/{len(records)} rows", end="\r", flush=True)
        copied = time.perf_counter() - started
        # 1536-d vectors are TOASTed, so the heap looks tiny and the planner picks no parallel
        # workers for the build unless told (environment.md §2).
        await connection.execute("ALTER TABLE vector_entries SET (parallel_workers = 1)")
        await connection.execute("SET maintenance_work_mem = '2GB'")
        await connection.execute("SET max_parallel_maintenance_workers = 1")
        definition = HALFVEC_INDEX_DEFINITION if halfvec else VECTOR_INDEX_DEFINITION
        print(f"\n  building the HNSW index ({'halfvec' if halfvec else 'vector'})…", flush=True)
        started = time.perf_counter()
        await connection.execute(definition)
        built = time.perf_counter() - started
        await connection.execute("VACUUM (ANALYZE) vector_entries")
        index_bytes = await connection.fetchval("SELECT pg_relation_size($1::regclass)", EMBEDDING_INDEX)
        return {"copy_seconds": round(copied, 1), "hnsw_build_seconds": round(built, 1),
                "hnsw_index_mib": round(index_bytes / 2**20, 1)}
    finally:
        await connection.close()


async def _measure(url: str, spaces: dict[int, np.ndarray], queries: int, halfvec: bool,
                   rng: np.random.Generator) -> list[dict]:
    database = await connect(url, min_size=1, max_size=1, command_timeout=120, migrate=False)
    results = []
    try:
        for index, vectors in spaces.items():
            owner, namespace = _space(index)
            unit = _unit(vectors)
            picks = rng.integers(0, len(vectors), queries + WARMUP_QUERIES)
            noise = (0.3 * NOISE / np.sqrt(EMBEDDING_DIMENSIONS)) * rng.standard_normal((len(picks), EMBEDDING_DIMENSIONS))
            query_vectors = (vectors[picks] + noise).astype(np.float32)
            truths = []
            for query in query_vectors:
                order = np.argsort(1.0 - unit @ _unit(query), kind="stable")[:K]
                truths.append({f"s{index}-{int(row)}" for row in order})
            samples: dict[str, dict[str, list[float]]] = {}
            for position, query in enumerate(query_vectors):
                for name, strategy in strategies(halfvec).items():  # interleaved per query: same load for all
                    elapsed, ids = await time_async(lambda: strategy(database, owner, namespace, query))
                    if position < WARMUP_QUERIES:
                        continue
                    cell = samples.setdefault(name, {"ms": [], "recall": [], "returned": []})
                    cell["ms"].append(elapsed)
                    cell["returned"].append(len(ids))
                    cell["recall"].append(len(truths[position] & set(ids)) / len(truths[position]))
            for name, cell in samples.items():
                summary = LatencySummary.of(cell["ms"])
                results.append({
                    "strategy": name, "scope_rows": len(vectors), "recall_at_10": float(np.mean(cell["recall"])),
                    "min_recall": float(np.min(cell["recall"])), "mean_rows_returned": float(np.mean(cell["returned"])),
                    "samples_ms": cell["ms"], **asdict(summary),
                })
                print(f"  {name:15s} scope={len(vectors):6d} recall={np.mean(cell['recall']):.3f} p50={summary.p50_ms:.1f}ms",
                      flush=True)
    finally:
        await database.close()
    return results


async def _run(url: str, rows: int, space_count: int, queries: int, halfvec: bool) -> dict:
    rng = np.random.default_rng(SEED)
    sizes = space_sizes(rows, space_count)
    spaces, records = _dataset(sizes, rng)
    print(f"search_quality: {len(records)} rows in {space_count} spaces (largest {sizes[0]}, smallest {sizes[-1]}); "
          f"measuring spaces of {[len(v) for v in spaces.values()]} rows", flush=True)
    database = await connect(url, migrate=True)  # creates the schema
    await database.close()
    load = await _load(url, records, halfvec)
    print(f"  loaded: {load}", flush=True)
    results = await _measure(url, spaces, queries, halfvec, rng)
    threshold = SearchTuning().exact_threshold(K, len(records))
    return {"table_rows": len(records), "spaces": space_count, "halfvec": halfvec, "queries_per_cell": queries, "k": K,
            "ours_exact_threshold_rows": threshold, "load": load, "tuning": asdict(SearchTuning(hnsw_on_halfvec=halfvec)),
            "results": results}


async def _with_database(*args: Any) -> dict:
    settings = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off", "shared_buffers": "1GB"}
    async with throwaway_database(os.environ.get("DATABASE_URL"), settings) as url:
        return await _run(url, *args)


def comparisons(report: dict) -> list[Comparison]:
    """ours against the exact scan, per measured scope size (recall and rows in the metric's name)."""
    by_cell = {(row["strategy"], row["scope_rows"]): row for row in report["results"]}
    index = "halfvec" if report["halfvec"] else "vector"
    rows = []
    for (strategy, scope_rows), row in sorted(by_cell.items(), key=lambda item: item[0][1]):
        if strategy != "ours":
            continue
        baseline = by_cell[("exact", scope_rows)]
        rows.append(Comparison.of_chunks(
            "search_quality", f"top-10 p50, scope {scope_rows} of {report['table_rows']} rows, recall@10 {row['recall_at_10']:.3f}",
            subject=f"ours ({index} HNSW)", baseline="exact scan", unit="ms",
            subject_samples=row["samples_ms"], baseline_samples=baseline["samples_ms"], rounds=5,
            goal="recall >= 0.99, p50 <= 10 ms",
        ))  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench search_quality", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=60_000, help="rows in the table [60000]")
    parser.add_argument("--spaces", type=int, default=200, help="owner+namespace spaces they are spread over [200]")
    parser.add_argument("--halfvec", action="store_true", help="HNSW on embedding::halfvec(1536) instead of the vector")
    parser.add_argument("--queries", type=int, default=60, help="timed queries per strategy and scope [60]")
    options = parser.parse_args()
    started = time.perf_counter()
    report = asyncio.run(_with_database(options.rows, options.spaces, options.queries, options.halfvec))
    report["total_seconds"] = round(time.perf_counter() - started, 1)
    rows = [
        (row["strategy"], row["scope_rows"], row["recall_at_10"], row["min_recall"], row["mean_rows_returned"], row["p50_ms"], row["p99_ms"])
        for row in sorted(report["results"], key=lambda row: (row["scope_rows"], row["strategy"]))
    ]
    print_table(
        f"scoped top-{K} in a {report['table_rows']}-row table over {report['spaces']} spaces, "
        f"{'halfvec' if report['halfvec'] else 'vector'} HNSW built in {report['load']['hnsw_build_seconds']} s "
        f"(exact below {report['ours_exact_threshold_rows']} rows for 'ours')",
        ["strategy", "scope", "recall@10", "min recall", "rows", "p50 ms", "p99 ms"], rows,
    )
    name = "search_quality_halfvec" if options.halfvec else "search_quality"
    path = write_report(name, report, comparisons(report))
    print(f"\nwrote {path.name} under build/bench/ in {report['total_seconds']} s")


if __name__ == "__main__":
    main()
