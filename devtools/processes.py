"""Child processes of the developer stacks (``make run``, ``make run-plain``): start, watch, stop.

Every child is ``python -m <module>`` from the repository, in its own session so that stopping it
also stops whatever it started (the relayer's sidecar, the enclave runtime's relayer): SIGTERM first,
SIGKILL to the whole process group after the grace period or once the child itself has exited.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 15.0
POLL_SECONDS = 0.1
WATCH_INTERVAL_SECONDS = 1.0
REPOSITORY = Path(__file__).resolve().parent.parent
# The developer's own configuration for these services must not leak into the children.
HOST_ONLY_PREFIXES = ("MEMWAL_", "SUI_", "WALRUS_", "SEAL_", "OPENAI_")


class StartError(RuntimeError):
    """A child did not come up; the message names it and the log to read."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def child_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without the service configuration it may carry, plus ``extra``."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith(HOST_ONLY_PREFIXES)}
    environment.update(extra or {})
    environment["PYTHONUNBUFFERED"] = "1"
    return environment


class ChildProcess:
    """``[*command_prefix] python <args>`` with its output appended to ``log_path`` (inherited if None)."""

    def __init__(self, name: str, args: Sequence[str], env: Mapping[str, str], log_path: Path | None,
                 *, command_prefix: Sequence[str] = ()) -> None:  # fmt: skip
        self.name = name
        self.args = list(args)
        self.env = dict(env)
        self.log_path = log_path
        self.command_prefix = list(command_prefix)  # e.g. ``ip netns exec NAME``
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        log = open(self.log_path, "ab") if self.log_path else None
        try:
            self.process = await asyncio.create_subprocess_exec(
                *self.command_prefix, sys.executable, *self.args, env=self.env, stdout=log, stderr=log,
                cwd=REPOSITORY, start_new_session=True,
            )  # fmt: skip
        finally:
            if log:
                log.close()

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def stop(self, *, kill: bool = False) -> None:
        """SIGTERM (or with ``kill``, SIGKILL to the group at once), then SIGKILL whatever is left of the group."""
        if self.process is None:
            return
        if self.alive:
            if kill:
                _kill_group(self.process.pid)
            else:
                self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT_SECONDS)
            except TimeoutError:
                _kill_group(self.process.pid)
                await self.process.wait()
        _kill_group(self.process.pid)  # anything the child started and left behind

    async def wait_until(self, condition: Callable[[], bool | Awaitable[bool]], failure: str,
                         *, timeout: float = START_TIMEOUT_SECONDS) -> None:  # fmt: skip
        """Poll ``condition`` until it holds; ``StartError(failure)`` if this child exits or time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            outcome = condition()
            if await outcome if inspect.isawaitable(outcome) else outcome:
                return
            if not self.alive or time.monotonic() > deadline:
                raise StartError(failure)
            await asyncio.sleep(POLL_SECONDS)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # the group is empty: everything has exited


async def supervise(children: Sequence[ChildProcess], stop: asyncio.Event, logs: Path) -> int:
    """A command's exit status: 0 once ``stop`` is set, 1 (and why, on stderr) if a child exits first."""
    exited = await watch(children, stop)
    if exited:
        print(f"{', '.join(exited)} exited; stopping (logs in {logs})", file=sys.stderr)
        return 1
    print("stopping …", flush=True)
    return 0


async def watch(children: Sequence[ChildProcess], stop: asyncio.Event) -> list[str]:
    """Wait until ``stop`` is set or a child exits; return the names of the children that exited."""
    while not stop.is_set():
        exited = [child.name for child in children if not child.alive]
        if exited:
            return exited
        try:
            await asyncio.wait_for(stop.wait(), WATCH_INTERVAL_SECONDS)
        except TimeoutError:
            pass
    return []
