"""Scoped nearest-neighbour search that returns the true top-k, not whatever HNSW happens to find.

pgvector's HNSW index applies ``WHERE owner = … AND namespace = …`` *after* walking the graph: with
a selective scope and ``hnsw.iterative_scan = off`` (the default) it silently returns too few rows.
So we pick the plan ourselves:

1. Count the scope, stopping one past a threshold (an index-only scan on the covering
   (owner, namespace) B-tree). An exact scan reads every scope row; a filtered HNSW walk visits
   about ``candidates × table_rows / scope_rows`` tuples at a similar cost per tuple. The two are
   equal at ``scope = sqrt(candidates × table_rows)``, which is the threshold (never below
   ``exact_scan_min_rows``).
2. Small scope: exact scan. Ordering by ``distance + 0`` over a fenced subquery is nothing the HNSW
   index can supply, so the planner must read the scope through the B-tree and sort: recall 1.0.
3. Large scope: HNSW with ``iterative_scan = relaxed_order``, a raised ``ef_search`` and a
   ``max_scan_tuples`` sized to the scope's selectivity, over-fetching candidates and sorting them
   exactly. If the index still yields fewer than ``limit`` rows, fall back to the exact scan.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import asyncpg

from relayer.database.errors import InvalidLimit, InvalidVector
from relayer.database.pool import Database

EMBEDDING_DIMENSIONS = 1536


@dataclass(frozen=True)
class SearchTuning:
    """Knobs of the scoped search; the defaults come from ``bench/search_quality.py``."""

    exact_scan_min_rows: int = 1_000  # scopes this small are always scanned exactly
    # cost of one tuple visited by HNSW / one row of the exact scan: 4 fits the 300k-row run of
    # bench/search_quality.py (HNSW ≈ 3.4 ms × table/scope, exact ≈ 7.9 µs × scope; they cross near 11k rows)
    hnsw_cost_ratio: float = 4.0
    ef_search: int = 200  # HNSW candidate list (pgvector accepts up to 1000)
    overfetch_factor: int = 4  # candidates fetched per requested row before the exact re-sort
    min_candidates: int = 100
    max_scan_tuples_floor: int = 20_000  # pgvector's default
    max_scan_tuples_ceiling: int = 1_000_000
    # The HNSW index is on ``embedding::halfvec(1536)`` (half the index size; candidates are still re-sorted
    # by the full-precision distance): bench/search_quality.py --halfvec measures it against the vector index.
    hnsw_on_halfvec: bool = False

    def candidates(self, limit: int) -> int:
        return max(limit * self.overfetch_factor, self.min_candidates)

    def exact_threshold(self, limit: int, table_rows: int) -> int:
        """Largest scope still answered by the exact scan."""
        balance = math.sqrt(self.hnsw_cost_ratio * self.candidates(limit) * max(table_rows, 0))
        return max(self.exact_scan_min_rows, math.ceil(balance))

    def max_scan_tuples(self, limit: int, table_rows: int) -> int:
        # The scope has more than exact_threshold rows, so walking candidates × table / threshold
        # tuples should meet enough members; double it because scopes cluster unevenly.
        share = min(1.0, self.exact_threshold(limit, table_rows) / max(table_rows, 1))
        wanted = math.ceil(2 * self.candidates(limit) / share)
        return max(self.max_scan_tuples_floor, min(wanted, self.max_scan_tuples_ceiling))


DEFAULT_SEARCH_TUNING = SearchTuning()

EMBEDDING_INDEX = "idx_vector_entries_embedding"
# The two definitions the index can have: on the vector (deployments before migration 008) or on its cast.
VECTOR_INDEX_DEFINITION = f"CREATE INDEX {EMBEDDING_INDEX} ON vector_entries USING hnsw (embedding vector_cosine_ops)"
HALFVEC_INDEX_DEFINITION = (f"CREATE INDEX {EMBEDDING_INDEX} ON vector_entries"
                            f" USING hnsw ((embedding::halfvec({EMBEDDING_DIMENSIONS})) halfvec_cosine_ops)")


async def detect_search_tuning(database: Database, tuning: SearchTuning = DEFAULT_SEARCH_TUNING) -> SearchTuning:
    """``tuning`` aimed at the HNSW index the table has: the query must order by the indexed expression."""
    async with database.connection() as connection:
        definition = await connection.fetchval(
            "SELECT indexdef FROM pg_indexes WHERE tablename = 'vector_entries' AND indexname = $1", EMBEDDING_INDEX)
    return replace(tuning, hnsw_on_halfvec=definition is not None and "halfvec_cosine_ops" in definition)


@dataclass(frozen=True)
class Hit:
    id: str
    blob_id: str
    distance: float
    created_at: datetime
    importance: float
    blob_size: int
    tags: tuple[str, ...] = ()


def as_embedding(values: Iterable[float]) -> list[float]:
    """Validate an embedding: 1536 float32 components, all finite, not all zero (cosine needs a direction).

    Returns the components rounded to float32, as pgvector stores them.
    """
    if isinstance(values, str | bytes):
        raise InvalidVector("embedding is not a list of numbers")
    try:
        components = array("f", values)
    except (TypeError, ValueError) as error:
        raise InvalidVector(f"embedding is not a list of numbers: {error}") from error
    if len(components) != EMBEDDING_DIMENSIONS:
        raise InvalidVector(f"embedding must have {EMBEDDING_DIMENSIONS} dimensions, got {len(components)}")
    if not all(math.isfinite(x) for x in components):
        raise InvalidVector("embedding has NaN or infinite components")
    if not any(components):
        raise InvalidVector("embedding is the zero vector")
    return components.tolist()


_COLUMNS = "id, blob_id, created_at, importance, blob_size_bytes, tags"

# One round trip for both sizes. reltuples is the planner's estimate (kept fresh by autovacuum /
# ANALYZE; -1 before the first). The count stops one row past the threshold, computed as
# SearchTuning.exact_threshold does: greatest(min_rows, ceil(sqrt(ratio * candidates * table_rows))).
_SIZES = """
WITH estimate AS (
    SELECT greatest(reltuples, 0)::float8 AS table_rows FROM pg_class WHERE oid = 'vector_entries'::regclass
)
SELECT table_rows::bigint AS table_rows,
       (SELECT count(*) FROM (
            SELECT 1 FROM vector_entries WHERE owner = $1 AND namespace = $2{tags}
            LIMIT greatest($3::bigint, ceil(sqrt($4::float8 * table_rows))::bigint) + 1
        ) AS scope) AS scope_rows
FROM estimate
"""

# OFFSET 0 keeps the subquery from being flattened, so each distance (and each TOAST fetch of a
# 6 KiB vector) is computed once, not again for the "+ 0" sort key.
# The column list is a constant; every value is a bind parameter.
_EXACT = f"""
SELECT * FROM (
    SELECT {_COLUMNS}, embedding <=> $3 AS distance
    FROM vector_entries
    WHERE owner = $1 AND namespace = $2{{filters}}
    OFFSET 0
) AS scope
ORDER BY distance + 0, id
LIMIT $4
"""  # noqa: S608

# relaxed_order yields candidates only roughly by distance, yet the planner believes the index
# output is sorted and would merely "Incremental Sort" it; "+ 0" forces a real sort.
_APPROXIMATE = f"""
SELECT * FROM (
    SELECT {_COLUMNS}, embedding <=> $3 AS distance
    FROM vector_entries
    WHERE owner = $1 AND namespace = $2{{filters}}
    ORDER BY embedding <=> $3
    LIMIT $5
) AS candidates
ORDER BY distance + 0, id
LIMIT $4
"""  # noqa: S608

# The same over an HNSW index built on the half-precision cast: its walk ranks by the cast, the re-sort does not.
_APPROXIMATE_HALFVEC = _APPROXIMATE.replace(
    "ORDER BY embedding <=> $3", f"ORDER BY embedding::halfvec({EMBEDDING_DIMENSIONS}) <=> $3::halfvec({EMBEDDING_DIMENSIONS})"
)

# enable_sort/enable_bitmapscan off keep the planner from answering a large scope with
# "B-tree + full sort", which would be exact but read every row of the scope.
_TUNE_HNSW = """
SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true),
       set_config('hnsw.ef_search', $1, true),
       set_config('hnsw.max_scan_tuples', $2, true),
       set_config('enable_sort', 'off', true),
       set_config('enable_bitmapscan', 'off', true),
       set_config('enable_seqscan', 'off', true)
"""


def _filters(first_parameter: int, *, visible_at: datetime | None, tags: Sequence[str]) -> tuple[str, list[object]]:
    """The scope's extra conditions as SQL over bind parameters numbered from ``first_parameter``, and their values.

    ``tags @>`` is the GIN-indexed all-of test: a row qualifies when it carries every one of ``tags``.
    """
    clause, values = "", list[object]()
    if visible_at is not None:
        values.append(visible_at)
        clause += f" AND (expires_at IS NULL OR expires_at > ${first_parameter + len(values) - 1})"
    if tags:
        values.append(list(tags))
        clause += f" AND tags @> ${first_parameter + len(values) - 1}::text[]"
    return clause, values


async def search_scope(
    database: Database,
    owner: str,
    namespace: str,
    query_vector: Iterable[float],
    limit: int,
    tuning: SearchTuning = SearchTuning(),
    *,
    visible_at: datetime | None = None,
    tags: Sequence[str] = (),
) -> list[Hit]:
    """The ``limit`` nearest rows by cosine distance in (owner, namespace), nearest first.

    ``visible_at``: leave out rows whose ``expires_at`` is at or before it (None: no expiry filter).
    ``tags``: only rows carrying all of them. The scope count that picks the plan counts tagged rows only (a
    selective tag makes a small scope) but ignores expiry, which would cost a heap visit per row.
    """
    if limit < 1:
        raise InvalidLimit(f"limit must be at least 1, got {limit}")
    query = as_embedding(query_vector)
    size_filter, size_values = _filters(5, visible_at=None, tags=tags)
    exact_filter, exact_values = _filters(5, visible_at=visible_at, tags=tags)
    approximate_filter, approximate_values = _filters(6, visible_at=visible_at, tags=tags)
    exact = _EXACT.format(filters=exact_filter)
    async with database.connection() as connection:
        sizes = await connection.fetchrow(
            _SIZES.format(tags=size_filter), owner, namespace, tuning.exact_scan_min_rows,
            tuning.hnsw_cost_ratio * tuning.candidates(limit), *size_values,
        )
        table_rows = int(sizes["table_rows"])
        if sizes["scope_rows"] <= tuning.exact_threshold(limit, table_rows):
            rows = await connection.fetch(exact, owner, namespace, query, limit, *exact_values)
            return [_hit(row) for row in rows]
        async with connection.transaction():  # SET LOCAL needs one
            fetch = tuning.candidates(limit)
            await connection.execute(
                _TUNE_HNSW, str(max(tuning.ef_search, min(fetch, 1000))), str(tuning.max_scan_tuples(limit, table_rows))
            )
            approximate = _APPROXIMATE_HALFVEC if tuning.hnsw_on_halfvec else _APPROXIMATE
            rows = await connection.fetch(
                approximate.format(filters=approximate_filter), owner, namespace, query, limit, fetch, *approximate_values
            )
            if len(rows) < limit:
                # The walk hit max_scan_tuples before finding enough scope members: be exact instead.
                rows = await connection.fetch(exact, owner, namespace, query, limit, *exact_values)
        return [_hit(row) for row in rows]


def _hit(row: asyncpg.Record) -> Hit:
    return Hit(
        id=row["id"],
        blob_id=row["blob_id"],
        distance=float(row["distance"]),
        created_at=row["created_at"],
        importance=float(row["importance"]),
        blob_size=int(row["blob_size_bytes"]),
        tags=tuple(row["tags"]),
    )
