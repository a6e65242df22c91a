"""Storage-layer errors, and the one place asyncpg / OS errors are translated into them.

    DatabaseError                      any storage failure; the HTTP layer answers 500
    ├── DatabaseUnavailable            cannot reach / use the server right now (refused, shutdown,
    │   │                              too many connections, auth misconfigured); answer 503
    │   └── DatabaseTimeout            a query or connection attempt ran out of time
    ├── ConstraintViolation            a unique / check / foreign-key constraint refused a write
    ├── MigrationError                 the schema could not be brought up to date
    ├── LeaseLost                      a job transition by a worker that no longer holds the job
    ├── QuotaExceeded                  storage quota; message is upstream's text, answer 402
    └── InvalidQuery (also ValueError) caller input the HTTP layer turns into a 400
        ├── InvalidCursor              a malformed namespace-listing cursor
        ├── InvalidLimit               a page size below 1
        └── InvalidVector              wrong dimension or non-finite component
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg


class DatabaseError(Exception):
    """Base class of every storage-layer error."""


class DatabaseUnavailable(DatabaseError):
    """The database cannot be reached or refuses work; retrying later may succeed."""


class DatabaseTimeout(DatabaseUnavailable):
    """A connection attempt or statement exceeded its time limit."""


class ConstraintViolation(DatabaseError):
    """A write broke a constraint (unique, check, not-null, foreign key)."""


class MigrationError(DatabaseError):
    """A migration failed or an applied migration was edited afterwards."""


class LeaseLost(DatabaseError):
    """The job is no longer leased to this worker (lease expired and re-claimed, or already final)."""


class QuotaExceeded(DatabaseError):
    """The owner's stored ciphertext would exceed the storage quota."""


class InvalidQuery(DatabaseError, ValueError):
    """Caller input that can never succeed; the HTTP layer answers 400."""


class InvalidCursor(InvalidQuery):
    """A pagination cursor that this relayer did not produce."""


class InvalidLimit(InvalidQuery):
    """A page size or result limit below 1."""


class InvalidVector(InvalidQuery):
    """An embedding of the wrong dimension or with NaN / infinite components."""


# SQLSTATE classes: 08 connection exception, 53 insufficient resources, 57 operator intervention
# (57014 query_canceled is a timeout and handled first), 28 invalid authorization.
_UNAVAILABLE_SQLSTATE_CLASSES = ("08", "28", "53", "57")
_QUERY_CANCELED = "57014"


@contextmanager
def map_database_errors() -> Iterator[None]:
    """Translate asyncpg, socket and timeout errors raised in the block into this module's tree."""
    try:
        yield
    except DatabaseError:
        raise
    except asyncpg.PostgresError as error:
        raise _from_postgres_error(error) from error
    except TimeoutError as error:
        raise DatabaseTimeout("database operation timed out") from error
    except asyncpg.InterfaceError as error:
        # Closed pool / connection released mid-query: the client side is unusable, not the data.
        raise DatabaseUnavailable(f"database connection unusable: {error}") from error
    except OSError as error:
        raise DatabaseUnavailable(f"database unreachable: {error.strerror or error}") from error


def _from_postgres_error(error: asyncpg.PostgresError) -> DatabaseError:
    sqlstate = getattr(error, "sqlstate", None) or ""
    message = getattr(error, "message", None) or str(error)
    if sqlstate == _QUERY_CANCELED:
        return DatabaseTimeout(f"statement canceled: {message}")
    if isinstance(error, asyncpg.IntegrityConstraintViolationError):
        return ConstraintViolation(message)
    if sqlstate[:2] in _UNAVAILABLE_SQLSTATE_CLASSES:
        return DatabaseUnavailable(f"database unavailable ({sqlstate}): {message}")
    return DatabaseError(f"database error ({sqlstate}): {message}")
