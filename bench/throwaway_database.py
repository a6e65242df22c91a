"""A PostgreSQL database that exists only for one benchmark run.

With ``DATABASE_URL`` set (an external server, as CI has), a fresh database on it, dropped afterwards; otherwise
an embedded server in a temporary directory, started with ``settings`` (durability off: the data is thrown away).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from devtools.scratch_postgres import scratch_database, temporary_embedded_postgres

THROWAWAY_SETTINGS = {"fsync": "off", "synchronous_commit": "off"}


@asynccontextmanager
async def throwaway_database(external: str | None, settings: Mapping[str, str] = THROWAWAY_SETTINGS) -> AsyncIterator[str]:
    """The URL of an empty database; ``external`` is the server to create it on (None: an embedded one)."""
    if external:
        async with scratch_database(external, prefix="memwal_bench") as url:
            yield url
        return
    with temporary_embedded_postgres("memwal-bench-postgres-", settings) as url:
        yield url
