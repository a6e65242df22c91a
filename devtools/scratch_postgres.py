"""Throwaway PostgreSQL for tests and benches: a new database on a server, or a whole embedded server in a
temporary directory; either is gone on exit."""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from devtools.embedded_databases import start_embedded_postgres


def with_database_name(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` on the same server."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@asynccontextmanager
async def scratch_database(server_url: str, *, prefix: str) -> AsyncIterator[str]:
    """The URL of a new, empty database ``<prefix>_<random>`` on ``server_url``'s server, dropped on exit
    (its connections closed). Raises ``asyncpg.InsufficientPrivilegeError`` if the role may not create one."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield with_database_name(server_url, name)
    finally:
        admin = await asyncpg.connect(server_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@contextmanager
def temporary_embedded_postgres(prefix: str, settings: Mapping[str, str]) -> Iterator[str]:
    """The URL of an embedded PostgreSQL started with ``settings`` in a new temporary directory, stopped and
    removed on exit. Not under pytest's basetemp: as root the server runs as user "pgserver", and every pytest
    session resets pytest-of-<user> to 0700, locking that user out of its data directory."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        server = start_embedded_postgres(root / "data", settings=dict(settings))
        try:
            yield server.url
        finally:
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)
