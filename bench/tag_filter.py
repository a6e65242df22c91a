"""Tag-filtered recall (an extension): the server's ``tags @>`` filter against a client filtering untagged results.

One owner+namespace scope of ``--rows`` 1536-d rows (clustered around shared topic centres); a ``rare`` tag on
5 % of them and a ``common`` tag on 50 %. Ground truth is numpy's exact cosine top-10 among the tagged rows.

    server filter   ``search_scope(..., tags=(tag,))``: the GIN-indexed all-of filter inside the search
                    (``rare`` is a small scope: an exact scan of the tagged rows; ``common`` walks HNSW)
    client filter   what a caller without server-side tags does: the unfiltered top 100, then keep the
                    tagged rows (the closest 10 of them)

Both run interleaved in the same rounds, so they see the same load. Uses DATABASE_URL (a throwaway database is
created and dropped there) or an embedded server.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import time
from typing import Any

import asyncpg
import numpy as np
from pgvector.asyncpg import register_vector

from bench.common import Comparison, LatencySummary, print_table, time_async, write_report
from bench.throwaway_database import throwaway_database
from relayer.database.pool import connect
from relayer.database.vector_search import EMBEDDING_DIMENSIONS, search_scope

OWNER = "0x" + "7a" * 32
NAMESPACE = "tagged"
TAG_SHARES = {"rare": 0.05, "common": 0.5}
K = 10
CLIENT_FETCH = 100  # the client's unfiltered over-fetch (upstream's largest recall limit)
TOPICS = 100
NOISE = 0.7  # per-vector noise relative to the unit-norm topic centre
QUERY_NOISE = 0.1
SEED = 20261129


def _dataset(rows: int, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    centres = rng.standard_normal((TOPICS, EMBEDDING_DIMENSIONS)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    vectors = centres[rng.integers(0, TOPICS, rows)] + NOISE * rng.standard_normal((rows, EMBEDDING_DIMENSIONS)).astype(
        np.float32) / np.sqrt(EMBEDDING_DIMENSIONS)
    tagged = {tag: rng.random(rows) < share for tag, share in TAG_SHARES.items()}
    return vectors.astype(np.float32), tagged


async def _load(url: str, vectors: np.ndarray, tagged: dict[str, np.ndarray]) -> float:
    database = await connect(url, min_size=1, max_size=1, migrate=True)  # the relayer's schema, GIN index included
    await database.close()
    connection = await asyncpg.connect(url)
    try:
        await register_vector(connection)
        started = time.perf_counter()
        records = [
            (f"m{index}", OWNER, NAMESPACE, f"b{index}", vector, [tag for tag, mask in tagged.items() if mask[index]])
            for index, vector in enumerate(vectors)
        ]
        for offset in range(0, len(records), 2_000):
            await connection.copy_records_to_table("vector_entries", records=records[offset:offset + 2_000],
                                                   columns=["id", "owner", "namespace", "blob_id", "embedding", "tags"])
        await connection.execute("VACUUM (ANALYZE) vector_entries")
        return round(time.perf_counter() - started, 1)
    finally:
        await connection.close()


def _exact_tagged_top(normalized: np.ndarray, mask: np.ndarray, query: np.ndarray) -> set[str]:
    distances = 1.0 - normalized @ (query / np.linalg.norm(query))
    distances[~mask] = np.inf
    return {f"m{index}" for index in np.argsort(distances, kind="stable")[:K]}


async def _measure(url: str, vectors: np.ndarray, tagged: dict[str, np.ndarray], queries: int,
                   rng: np.random.Generator) -> list[dict[str, Any]]:
    database = await connect(url, min_size=1, max_size=1, command_timeout=120, migrate=False)
    results = []
    normalized = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    try:
        for tag, mask in tagged.items():
            server_ms: list[float] = []
            client_ms: list[float] = []
            server_recall: list[float] = []
            client_recall: list[float] = []
            for number in range(queries + 2):  # two warm-up queries per tag
                # a stored memory's neighbourhood: noise of norm ~0.1 around one row (a random direction has no
                # meaningful nearest neighbours)
                noise = rng.standard_normal(EMBEDDING_DIMENSIONS).astype(np.float32) * QUERY_NOISE / np.sqrt(EMBEDDING_DIMENSIONS)
                query = vectors[rng.integers(0, len(vectors))] + noise
                truth = _exact_tagged_top(normalized, mask, query)
                elapsed_server, server_hits = await time_async(
                    functools.partial(search_scope, database, OWNER, NAMESPACE, query, K, tags=(tag,)))
                elapsed_client, client_hits = await time_async(
                    functools.partial(search_scope, database, OWNER, NAMESPACE, query, CLIENT_FETCH))
                kept = [hit.id for hit in client_hits if mask[int(hit.id[1:])]][:K]
                if number < 2:
                    continue
                server_ms.append(elapsed_server)
                client_ms.append(elapsed_client)
                server_recall.append(len(truth & {hit.id for hit in server_hits}) / K)
                client_recall.append(len(truth & set(kept)) / K)
            results.append({
                "tag": tag, "tagged_rows": int(mask.sum()), "server_recall_at_10": float(np.mean(server_recall)),
                "client_recall_at_10": float(np.mean(client_recall)), "server": LatencySummary.of(server_ms).__dict__,
                "client": LatencySummary.of(client_ms).__dict__, "server_ms": server_ms, "client_ms": client_ms,
            })
    finally:
        await database.close()
    return results


async def _run(rows: int, queries: int) -> dict[str, Any]:
    rng = np.random.default_rng(SEED)
    vectors, tagged = _dataset(rows, rng)
    async with throwaway_database(os.environ.get("DATABASE_URL")) as url:
        load_seconds = await _load(url, vectors, tagged)
        results = await _measure(url, vectors, tagged, queries, rng)
    return {"rows": rows, "queries_per_tag": queries, "k": K, "client_fetch": CLIENT_FETCH, "load_seconds": load_seconds,
            "results": results}


def comparisons(report: dict[str, Any]) -> list[Comparison]:
    return [
        Comparison.of_chunks(
            "tag_filter", f"top-10 p50, tag on {row['tagged_rows']} of {report['rows']} rows, recall@10 "
                          f"{row['server_recall_at_10']:.2f} vs {row['client_recall_at_10']:.2f}",
            subject="server tags filter", baseline=f"client filter of top {CLIENT_FETCH}", unit="ms",
            subject_samples=row["server_ms"], baseline_samples=row["client_ms"], rounds=5,
            goal="recall@10 >= 0.99",
        )
        for row in report["results"]
    ]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench tag_filter", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000, help="rows in the one scope [20000]")
    parser.add_argument("--queries", type=int, default=40, help="timed queries per tag [40]")
    options = parser.parse_args()
    started = time.perf_counter()
    report = asyncio.run(_run(options.rows, options.queries))
    report["total_seconds"] = round(time.perf_counter() - started, 1)
    print_table(
        f"tag-filtered top-{K} in one {report['rows']}-row scope",
        ["tag", "tagged rows", "server recall@10", "client recall@10", "server p50 ms", "client p50 ms"],
        [(row["tag"], row["tagged_rows"], row["server_recall_at_10"], row["client_recall_at_10"], row["server"]["p50_ms"],
          row["client"]["p50_ms"]) for row in report["results"]],
    )
    path = write_report("tag_filter", report, comparisons(report))
    print(f"\nwrote {path.name} under build/bench/ in {report['total_seconds']} s")


if __name__ == "__main__":
    main()
