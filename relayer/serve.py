"""The relayer process: start the sidecar, wait until it is healthy, serve HTTP, shut down in order.

Order on start: settings → databases (DATABASE_URL, REDIS_URL) → sidecar child
(exits the relayer if not healthy within SIDECAR_START_TIMEOUT_SECS) → services → job workers → HTTP.
Order on stop (SIGINT/SIGTERM): stop accepting → drain requests (graceful timeout) → stop workers →
close pools → stop the sidecar. If the sidecar dies, the relayer exits too.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import sys
from collections.abc import Mapping
from contextlib import AsyncExitStack
from pathlib import Path

from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config

from memwal_common.secret import Secret
from memwal_common.signals import shutdown_on_signals
from relayer.app import build_app
from relayer.job_runner import JobRunner
from relayer.services import create_services
from relayer.settings import Settings
from relayer.sidecar_client import SidecarClient

logger = logging.getLogger("memwal.serve")

# Variables only the sidecar may see; the relayer drops them from its own environment once spawned.
SIDECAR_ONLY_VARIABLES = ("SERVER_SUI_PRIVATE_KEYS", "SERVER_SUI_PRIVATE_KEY")
SIDECAR_HEALTH_POLL_SECONDS = 0.2
SIDECAR_WATCH_SECONDS = 2.0


class StartupError(RuntimeError):
    """The relayer cannot start; the message says why."""


class SidecarProcess:
    def __init__(self, socket_path: str, token: Secret, environment: Mapping[str, str]) -> None:
        self.socket_path = socket_path
        self.token = token
        self._environment = dict(environment)
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, timeout_seconds: float) -> None:
        if os.path.exists(self.socket_path):
            os.unlink(self.socket_path)
        env = dict(self._environment)
        env["SIDECAR_SOCKET"] = self.socket_path
        env["SIDECAR_AUTH_TOKEN"] = self.token.reveal()
        self.process = await asyncio.create_subprocess_exec(sys.executable, "-m", "sidecar", env=env)
        probe = SidecarClient(self.socket_path, self.token)
        try:
            deadline = asyncio.get_running_loop().time() + timeout_seconds
            while asyncio.get_running_loop().time() < deadline:
                if self.process.returncode is not None:
                    raise StartupError(f"sidecar exited during start-up with status {self.process.returncode}")
                if os.path.exists(self.socket_path) and await probe.health():
                    return
                await asyncio.sleep(SIDECAR_HEALTH_POLL_SECONDS)
        finally:
            await probe.close()
        await self.stop()
        raise StartupError(f"sidecar not healthy within {timeout_seconds:g} s")

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), 10)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


class SidecarDied(RuntimeError):
    """The sidecar exited while the relayer was serving; the relayer stops and exits non-zero."""


async def _watch_sidecar(sidecar: SidecarProcess, shutdown: asyncio.Event, failures: list[str]) -> None:
    assert sidecar.process is not None
    await sidecar.process.wait()
    if not shutdown.is_set():
        message = f"sidecar exited with status {sidecar.process.returncode}; stopping the relayer"
        logger.error("%s", message)
        failures.append(message)
        shutdown.set()


async def start_relayer(
    settings: Settings,
    environment: Mapping[str, str],
    stack: AsyncExitStack,
    shutdown: asyncio.Event,
    failures: list[str] | None = None,
):
    """Connect to the databases, start the sidecar, services and job workers; return the ASGI app.

    Everything started is registered on ``stack`` so closing it stops them in reverse order. The enclave
    runtime calls this once it has been provisioned with its secrets. If the sidecar dies later,
    ``shutdown`` is set and a message is appended to ``failures``.
    """
    data_dir = Path(settings.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    database_url, redis_url = settings.database_url, settings.redis_url
    if database_url is None or redis_url is None:
        # Embedded servers are developer tooling (devtools/, never in the image): `make run-plain` starts them.
        raise StartupError("DATABASE_URL and REDIS_URL are required (`make run-plain` starts local servers for development)")
    token = settings.sidecar_auth_token if settings.sidecar_auth_token else Secret(secrets.token_urlsafe(32))
    socket_path = settings.sidecar_socket or str((data_dir / "sidecar.sock").resolve())
    sidecar_env = dict(environment)
    sidecar_env["REDIS_URL"] = redis_url
    sidecar = SidecarProcess(socket_path, token, sidecar_env)
    await sidecar.start(settings.sidecar_start_timeout_seconds)
    stack.push_async_callback(sidecar.stop)
    for name in SIDECAR_ONLY_VARIABLES:
        os.environ.pop(name, None)
    services = await create_services(
        settings, database_url=database_url, redis_url=redis_url, sidecar_socket=socket_path, sidecar_token=token
    )
    stack.push_async_callback(services.close)
    services.job_runner = JobRunner(services)
    services.job_runner.start()
    watcher = asyncio.create_task(_watch_sidecar(sidecar, shutdown, failures if failures is not None else []))
    stack.callback(watcher.cancel)
    return build_app(services)


def hypercorn_config(bind: str) -> Config:
    config = Config()
    config.bind = [bind if ":" in bind or bind.startswith("fd://") else f"127.0.0.1:{bind}"]
    config.accesslog = None
    config.graceful_timeout = 10
    config.h11_max_incomplete_size = 16 * 1024
    config.keep_alive_timeout = 30
    return config


async def run(settings: Settings, environment: Mapping[str, str], shutdown: asyncio.Event) -> int:
    failures: list[str] = []
    async with AsyncExitStack() as stack:
        app = await start_relayer(settings, environment, stack, shutdown, failures)
        config = hypercorn_config(settings.bind)
        logger.info("relayer listening on %s", ", ".join(config.bind))
        await hypercorn_serve(app, config, shutdown_trigger=shutdown.wait)
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    import argparse

    from memwal_common.environment import SettingsError
    from memwal_common.logs import configure_logging

    parser = argparse.ArgumentParser(
        prog="python -m relayer",
        description="MemWal-compatible relayer. Starts its sidecar (the key holder), then serves the MemWal API. "
        "All configuration comes from environment variables; see README 'Configuration'.",
    )
    parser.parse_args(argv)
    environment = dict(os.environ)
    try:
        settings = Settings.from_environ(environment)
        settings.validate()
    except SettingsError as exc:
        print(f"relayer: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_format)

    async def main_async() -> int:
        shutdown = shutdown_on_signals()
        try:
            return await run(settings, environment, shutdown)
        except StartupError as exc:
            logger.error("%s", exc)
            return 1

    return asyncio.run(main_async())
