"""List an owner's namespaces, oldest change first, with an opaque keyset cursor.

Pages are ordered by (updated_at, name), where updated_at is the newest ``updated_at`` of the
namespace's memories. The cursor is the position of the last row served, so a finished walk can
be resumed later to see only namespaces changed since (the SDK documents this). It is set on every
page, including the last. Ties in updated_at are broken by name, so no row is skipped or repeated.

Response shape (SDK 0.2.1 ``NamespacesResult``)::

    {"namespaces": [{"id", "name", "memory_count", "storage_used", "updated_at"}],
     "next_cursor": str, "has_more": bool, "snapshot_version": int}
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from relayer.database.cursors import decode_json_cursor, encode_json_cursor
from relayer.database.errors import InvalidCursor, InvalidLimit
from relayer.database.pool import Database

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 500
_CURSOR_VERSION = 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class NamespaceSummary:
    id: str  # stable, opaque: derived from (owner, name), reveals neither
    name: str
    memory_count: int
    storage_used: int
    updated_at: str  # RFC 3339, microseconds, UTC


@dataclass(frozen=True)
class NamespacePage:
    namespaces: tuple[NamespaceSummary, ...]
    next_cursor: str
    has_more: bool
    snapshot_version: int  # microseconds of the owner's newest change; moves when memories change

    def to_json(self) -> dict[str, object]:
        return {
            "namespaces": [asdict(summary) for summary in self.namespaces],
            "next_cursor": self.next_cursor,
            "has_more": self.has_more,
            "snapshot_version": self.snapshot_version,
        }


@dataclass(frozen=True)
class CursorPosition:
    updated_at: datetime
    name: str


_PAGE = """
WITH grouped AS (
    SELECT namespace, count(*) AS memory_count, coalesce(sum(blob_size_bytes), 0)::bigint AS storage_used,
           max(updated_at) AS updated_at
    FROM vector_entries WHERE owner = $1 GROUP BY namespace
)
SELECT namespace, memory_count, storage_used, updated_at,
       (SELECT max(updated_at) FROM grouped) AS newest
FROM grouped
WHERE (updated_at, namespace) > ($2, $3)
ORDER BY updated_at, namespace
LIMIT $4
"""

_NEWEST = "SELECT max(updated_at) FROM vector_entries WHERE owner = $1"


async def list_namespaces(database: Database, owner: str, cursor: str | None = None, limit: int | None = None) -> NamespacePage:
    """One page of the owner's namespaces after ``cursor`` (None = from the start).

    ``limit`` defaults to 100 and is clamped to 500; below 1 raises ``InvalidLimit``. A cursor this
    relayer did not produce raises ``InvalidCursor``.
    """
    size = DEFAULT_PAGE_SIZE if limit is None else limit
    if size < 1:
        raise InvalidLimit(f"limit must be at least 1, got {size}")
    size = min(size, MAX_PAGE_SIZE)
    start = CursorPosition(_EPOCH, "") if cursor is None else decode_cursor(cursor)
    async with database.transaction() as connection:
        rows = await connection.fetch(_PAGE, owner, start.updated_at, start.name, size + 1)
        newest = rows[0]["newest"] if rows else await connection.fetchval(_NEWEST, owner)
    served = rows[:size]
    summaries = tuple(
        NamespaceSummary(
            id=_namespace_id(owner, row["namespace"]),
            name=row["namespace"],
            memory_count=row["memory_count"],
            storage_used=row["storage_used"],
            updated_at=_rfc3339(row["updated_at"]),
        )
        for row in served
    )
    last = CursorPosition(served[-1]["updated_at"], served[-1]["namespace"]) if served else start
    return NamespacePage(
        namespaces=summaries,
        next_cursor=encode_cursor(last),
        has_more=len(rows) > size,
        snapshot_version=0 if newest is None else _microseconds(newest),
    )


def encode_cursor(position: CursorPosition) -> str:
    payload = {"v": _CURSOR_VERSION, "t": _microseconds(position.updated_at), "n": position.name}
    return encode_json_cursor(payload)


def decode_cursor(cursor: str) -> CursorPosition:
    payload = decode_json_cursor(cursor)
    if (
        not isinstance(payload, dict)
        or set(payload) != {"v", "t", "n"}
        or payload["v"] != _CURSOR_VERSION
        or type(payload["t"]) is not int
        or not isinstance(payload["n"], str)
        or payload["t"] < 0
    ):
        raise InvalidCursor("malformed cursor")
    try:
        payload["n"].encode("utf-8")  # lone surrogates from \ud800-style escapes
        updated_at = datetime.fromtimestamp(payload["t"] // 1_000_000, UTC).replace(
            microsecond=payload["t"] % 1_000_000
        )
    except (OverflowError, OSError, ValueError, UnicodeError) as error:
        raise InvalidCursor("malformed cursor") from error
    return CursorPosition(updated_at, payload["n"])


def _microseconds(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _namespace_id(owner: str, name: str) -> str:
    return hashlib.sha256(f"{owner}\x00{name}".encode()).hexdigest()[:32]


class NamespaceIndex:
    """``list_namespaces`` bound to one database (what the namespace-listing route needs)."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def page(self, owner: str, cursor: str | None, limit: int) -> NamespacePage:
        return await list_namespaces(self._database, owner, cursor, limit)
