"""Tags and TTLs a caller attaches to a memory (extensions beyond upstream MemWal).

Tags are plaintext labels stored beside the index row (``vector_entries.tags``), visible to whoever reads the
operator's database, unlike the memory's text, which stays Seal-encrypted on Walrus. They are the caller's
own words, never derived from the memory. The request models bound them loosely (relayer/validation.py's
``Tags``); the operator's limits here (settings) are the ones enforced, with a 400 naming the limit.

A TTL becomes an absolute ``expires_at`` when the request is accepted (the injected clock), so a job that
indexes late does not extend it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from relayer.errors import InvalidValue


@dataclass(frozen=True)
class MetadataLimits:
    max_tags: int  # tags per memory (and per recall filter)
    max_tag_bytes: int  # UTF-8 bytes per tag
    min_ttl_seconds: int
    max_ttl_seconds: int


@dataclass(frozen=True)
class MemoryMetadata:
    tags: tuple[str, ...] = ()  # distinct, sorted
    expires_at: datetime | None = None


NO_METADATA = MemoryMetadata()


class MetadataPolicy:
    def __init__(self, limits: MetadataLimits, *, clock: Callable[[], datetime]) -> None:
        self._limits = limits
        self._clock = clock

    @property
    def limits(self) -> MetadataLimits:
        return self._limits

    def tags(self, values: Sequence[str] | None, field: str = "tags") -> tuple[str, ...]:
        """Distinct tags in a stable order; too many or too long ones are refused (400)."""
        if not values:
            return ()
        distinct = sorted(set(values))
        if len(distinct) > self._limits.max_tags:
            raise InvalidValue(f"`{field}` may hold at most {self._limits.max_tags} distinct tags, got {len(distinct)}")
        for tag in distinct:
            if len(tag.encode("utf-8")) > self._limits.max_tag_bytes:
                raise InvalidValue(f"`{field}` entries must be at most {self._limits.max_tag_bytes} bytes (UTF-8)")
        return tuple(distinct)

    def expires_at(self, ttl_seconds: int | None, field: str = "ttl_seconds") -> datetime | None:
        if ttl_seconds is None:
            return None
        low, high = self._limits.min_ttl_seconds, self._limits.max_ttl_seconds
        if not low <= ttl_seconds <= high:
            raise InvalidValue(f"`{field}` must be within {low}..{high} seconds, got {ttl_seconds}")
        return self._clock() + timedelta(seconds=ttl_seconds)

    def metadata(self, tags: Sequence[str] | None, ttl_seconds: int | None) -> MemoryMetadata:
        return MemoryMetadata(self.tags(tags), self.expires_at(ttl_seconds))
