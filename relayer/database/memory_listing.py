"""List an owner's memories (index rows, never content), a page at a time, at one snapshot.

A walk is pinned to a **snapshot version**: the oldest transaction still running when its first page was
read (``pg_snapshot_xmin``). Every row written by an older transaction is committed; every write from then
on carries a newer transaction id (``row_version``, stamped on insert and update by migration 005). Pages
serve rows with ``row_version`` below the snapshot in ``(row_version, id)`` order, and the cursor carries the
snapshot, so a walk neither skips nor repeats a row however writes interleave with it: rows written during
the walk (or changed during it) are left for the next walk, rows deleted during it are gone.

Response shape (upstream ``services/server/src/routes/memory_read.rs``)::

    {"memories": [{"memory_id", "namespace_id", "blob_id", "created_at", "size", "agent_id", "package_id",
                   "status", "end_epoch", "expires_at", "tags"}],  # tags: ours
     "next_cursor": str | null,   # null on the last page
     "snapshot_version": int}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from relayer.database.cursors import decode_json_cursor, encode_json_cursor
from relayer.database.errors import InvalidCursor, InvalidLimit
from relayer.database.pool import Database

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 500
_CURSOR_VERSION = 1
_MAX_XID8 = 2**64 - 1


@dataclass(frozen=True)
class MemoryRow:
    memory_id: str
    namespace: str
    blob_id: str
    created_at: datetime
    size: int
    agent_id: str | None
    package_id: str | None
    end_epoch: int | None
    expires_at: datetime | None
    tags: tuple[str, ...] = ()

    def status(self, now: datetime) -> Literal["active", "expired"]:
        """``expired`` once ``expires_at`` has passed; ``active`` otherwise, unknown expiry included (upstream)."""
        return "expired" if self.expires_at is not None and self.expires_at < now else "active"


@dataclass(frozen=True)
class MemoryPage:
    memories: tuple[MemoryRow, ...]
    next_cursor: str | None
    has_more: bool
    snapshot_version: int


@dataclass(frozen=True)
class MemoryCursor:
    snapshot: int  # the walk's horizon (pg_snapshot_xmin as an integer)
    row_version: int
    memory_id: str


_HORIZON = "SELECT pg_snapshot_xmin(pg_current_snapshot())::text"

_PAGE = """
SELECT id, namespace, blob_id, created_at, blob_size_bytes, agent_id, package_id, end_epoch, expires_at, tags,
       row_version::text AS row_version
FROM vector_entries
WHERE owner = $1 AND row_version < $2::text::xid8 AND (row_version, id) > ($3::text::xid8, $4)
  AND ($6::timestamptz IS NULL OR expires_at IS NULL OR expires_at > $6)
ORDER BY row_version, id
LIMIT $5
"""


async def list_memories(
    database: Database, owner: str, cursor: str | None = None, limit: int | None = None, *, visible_at: datetime | None = None
) -> MemoryPage:
    """One page of the owner's memories after ``cursor`` (None: a new walk at the current snapshot).

    ``visible_at``: leave out memories whose TTL ended at or before it (they are forgotten by the next sweep).

    ``limit`` defaults to 100 and is clamped to 500; below 1 raises ``InvalidLimit``. A cursor this relayer did
    not produce raises ``InvalidCursor``.
    """
    size = DEFAULT_PAGE_SIZE if limit is None else limit
    if size < 1:
        raise InvalidLimit(f"limit must be at least 1, got {size}")
    size = min(size, MAX_PAGE_SIZE)
    async with database.connection() as connection:
        start = decode_cursor(cursor) if cursor is not None else MemoryCursor(int(await connection.fetchval(_HORIZON)), 0, "")
        rows = await connection.fetch(_PAGE, owner, str(start.snapshot), str(start.row_version), start.memory_id, size + 1,
                                  visible_at)
    served = rows[:size]
    has_more = len(rows) > size
    last = served[-1] if served else None
    next_cursor = (
        encode_cursor(MemoryCursor(start.snapshot, int(last["row_version"]), last["id"])) if has_more and last else None
    )
    return MemoryPage(
        memories=tuple(
            MemoryRow(
                memory_id=row["id"], namespace=row["namespace"], blob_id=row["blob_id"], created_at=row["created_at"],
                size=row["blob_size_bytes"], agent_id=row["agent_id"], package_id=row["package_id"],
                end_epoch=row["end_epoch"], expires_at=row["expires_at"], tags=tuple(row["tags"]),
            )
            for row in served
        ),
        next_cursor=next_cursor,
        has_more=has_more,
        snapshot_version=start.snapshot,
    )


def encode_cursor(cursor: MemoryCursor) -> str:
    payload = {"v": _CURSOR_VERSION, "s": cursor.snapshot, "r": cursor.row_version, "i": cursor.memory_id}
    return encode_json_cursor(payload)


def decode_cursor(cursor: str) -> MemoryCursor:
    payload = decode_json_cursor(cursor)
    if (
        not isinstance(payload, dict)
        or set(payload) != {"v", "s", "r", "i"}
        or payload["v"] != _CURSOR_VERSION
        or any(type(payload[key]) is not int or not 0 <= payload[key] <= _MAX_XID8 for key in ("s", "r"))
        or not isinstance(payload["i"], str)
    ):
        raise InvalidCursor("malformed cursor")
    try:
        payload["i"].encode("utf-8")  # lone surrogates from \ud800-style escapes
    except UnicodeError as error:
        raise InvalidCursor("malformed cursor") from error
    return MemoryCursor(payload["s"], payload["r"], payload["i"])


def utc_now() -> datetime:
    return datetime.now(UTC)


class MemoryIndex:
    """``list_memories`` bound to one database and clock (what the memory-listing route needs)."""

    def __init__(self, database: Database, *, clock: Callable[[], datetime] = utc_now) -> None:
        self._database = database
        self.clock = clock

    async def page(self, owner: str, cursor: str | None, limit: int | None) -> MemoryPage:
        return await list_memories(self._database, owner, cursor, limit, visible_at=self.clock())
