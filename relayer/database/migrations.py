"""Bring the schema up to date on boot: ``migrations/NNN_name.sql``, applied in order, once each.

All pending files run in ONE transaction under a transaction-scoped advisory lock, so relayers
booting together serialise here and a failure leaves the schema untouched. ``schema_migrations``
records what ran with a SHA-256 of the file; editing an applied file is refused rather than
silently ignored. The files themselves are written to be re-runnable (IF NOT EXISTS), as upstream's
are, so they also adopt a database first created by the Rust relayer.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

from relayer.database.errors import DatabaseError, DatabaseUnavailable, MigrationError, map_database_errors

# Any fixed 64-bit number; it only has to differ from the other advisory locks we take
# (quota locks use 32-bit keys, so a key above 2**32 can never collide with them).
MIGRATION_LOCK_KEY = 0x6D656D77616C0001  # "memwal" + 1
_FILE_NAME = re.compile(r"^(?P<version>\d{3})_(?P<name>[a-z0-9_]+)\.sql$")

_CREATE_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    checksum   TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations() -> tuple[Migration, ...]:
    """The packaged migration files, ordered by version."""
    folder = resources.files("relayer.database") / "migrations"
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _FILE_NAME.match(entry.name)
        if match is None:
            continue
        found.append(Migration(match["version"], match["name"], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda migration: migration.version)
    versions = [migration.version for migration in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration versions in {versions}")
    return tuple(found)


async def apply_migrations(
    connection: asyncpg.Connection, migrations: tuple[Migration, ...] | None = None
) -> list[str]:
    """Apply the pending migrations; return the versions applied by this call (empty if none)."""
    pending_source = load_migrations() if migrations is None else migrations
    try:
        with map_database_errors():
            async with connection.transaction():
                await connection.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_KEY)
                await connection.execute(_CREATE_LEDGER)
                rows = await connection.fetch("SELECT version, checksum FROM schema_migrations")
                applied = {row["version"]: row["checksum"] for row in rows}
                newly_applied: list[str] = []
                for migration in pending_source:
                    recorded = applied.get(migration.version)
                    if recorded is not None:
                        if recorded != migration.checksum:
                            raise MigrationError(
                                f"migration {migration.version}_{migration.name} changed after it was applied"
                            )
                        continue
                    await connection.execute(migration.sql)
                    await connection.execute(
                        "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                        migration.version, migration.name, migration.checksum,
                    )
                    newly_applied.append(migration.version)
                return newly_applied
    except (MigrationError, DatabaseUnavailable):
        raise
    except DatabaseError as error:
        raise MigrationError(f"migration failed: {error}") from error
