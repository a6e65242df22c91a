"""A PostgreSQL database that exists only for one benchmark run.

With ``DATABASE_URL`` set (an external server, as CI has), a fresh database on it, dropped afterwards; otherwise
an embedded server in a temporary directory, started with ``settings`` (durability off: the data is thrown away).
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from devtools.embedded_databases import start_embedded_postgres

THROWAWAY_SETTINGS = {"fsync": "off", "synchronous_commit": "off"}


@asynccontextmanager
async def throwaway_database(external: str | None, settings: Mapping[str, str] = THROWAWAY_SETTINGS) -> AsyncIterator[str]:
    """The URL of an empty database; ``external`` is the server to create it on (None: an embedded one)."""
    if external:
        name = f"memwal_bench_{secrets.token_hex(4)}"
        admin = await asyncpg.connect(external)
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()
        parts = urlsplit(external)
        try:
            yield urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))
        finally:
            admin = await asyncpg.connect(external)
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()
        return
    root = Path(tempfile.mkdtemp(prefix="memwal-bench-postgres-"))
    try:
        server = start_embedded_postgres(root / "data", settings=dict(settings))
        try:
            yield server.url
        finally:
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
