"""The relayer process: start the sidecar, wait until it is healthy, serve HTTP, shut down in order.

Order on start: settings → databases (DATABASE_URL, REDIS_URL) → sidecar child
(exits the relayer if not healthy within SIDECAR_START_TIMEOUT_SECS) → services → job workers → HTTP
(and, with METRICS_BIND, the operator-only metrics listener).
Order on stop (SIGINT/SIGTERM): stop accepting → drain requests (graceful timeout) → stop workers →
close pools → stop the sidecar. If the sidecar dies while serving, the relayer restarts it with exponential
back-off (requests that need it answer 503 meanwhile, /health says so). The sidecar dies with the relayer:
it asks the kernel for SIGKILL when its parent goes (sidecar/lifeline.py).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import sys
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, cast

from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config
from starlette.applications import Starlette

from memwal_common.environment import SettingsError
from memwal_common.logs import configure_logging
from memwal_common.secret import Secret
from memwal_common.shared_settings import WALLET_KEY_VARIABLES
from memwal_common.signals import shutdown_on_signals
from relayer.app import build_app
from relayer.metrics_listener import metrics_app
from relayer.services import open_services
from relayer.settings import Settings
from relayer.sidecar_client import SidecarClient, SidecarLimits

logger = logging.getLogger("memwal.serve")

SIDECAR_HEALTH_POLL_SECONDS = 0.2
SIDECAR_STOP_MARGIN_SECONDS = 5.0
SIDECAR_RESTART_FIRST_DELAY_SECONDS = 0.5
SIDECAR_RESTART_MAX_DELAY_SECONDS = 30.0
SIDECAR_STABLE_SECONDS = 60.0  # a sidecar that ran this long restarts with the first delay again


class StartupError(RuntimeError):
    """The relayer cannot start; the message says why."""


def sidecar_limits(settings: Settings) -> SidecarLimits:
    return SidecarLimits(
        request_timeout_seconds=settings.sidecar_timeout_seconds,
        connect_timeout_seconds=settings.sidecar_connect_timeout_seconds,
        health_timeout_seconds=settings.sidecar_health_timeout_seconds,
        max_reply_bytes=settings.sidecar_max_reply_bytes,
    )


class SidecarProcess:
    """The sidecar child: started, health-checked, restarted with back-off when it dies, stopped last."""

    def __init__(self, socket_path: str, token: Secret, environment: Mapping[str, str], limits: SidecarLimits) -> None:
        self.socket_path = socket_path
        self.token = token
        self.limits = limits
        self._environment = dict(environment)
        self.process: asyncio.subprocess.Process | None = None
        self.restarts = 0
        self.on_restart: Callable[[], Awaitable[None]] | None = None  # e.g. drop the client's stale connections
        self._stopping = False
        self._supervisor: asyncio.Task[None] | None = None

    async def start(self, timeout_seconds: float) -> None:
        if os.path.exists(self.socket_path):
            os.unlink(self.socket_path)
        env = dict(self._environment)
        env["SIDECAR_SOCKET"] = self.socket_path
        env["SIDECAR_AUTH_TOKEN"] = self.token.reveal()
        env["SIDECAR_PARENT_PID"] = str(os.getpid())  # the sidecar exits when its parent is not (or no longer) us
        self.process = await asyncio.create_subprocess_exec(sys.executable, "-m", "sidecar", env=env)
        probe = SidecarClient.over_unix_socket(self.socket_path, self.token, self.limits)
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
        await self._terminate(timeout_seconds)
        raise StartupError(f"sidecar not healthy within {timeout_seconds:g} s")

    def supervise(self, start_timeout_seconds: float) -> None:
        """Restart the sidecar whenever it exits, until ``stop``; the wait doubles from 0.5 s up to 30 s."""
        self._supervisor = asyncio.create_task(self._supervise(start_timeout_seconds), name="sidecar-supervisor")

    async def _supervise(self, start_timeout_seconds: float) -> None:
        loop = asyncio.get_running_loop()
        delay = SIDECAR_RESTART_FIRST_DELAY_SECONDS
        while not self._stopping and self.process is not None:
            started = loop.time()
            await self.process.wait()
            if self._stopping:
                return
            if loop.time() - started >= SIDECAR_STABLE_SECONDS:
                delay = SIDECAR_RESTART_FIRST_DELAY_SECONDS
            logger.error("sidecar exited with status %s; restarting it in %.1f s", self.process.returncode, delay)
            while not self._stopping:
                await asyncio.sleep(delay)
                delay = min(delay * 2, SIDECAR_RESTART_MAX_DELAY_SECONDS)
                try:
                    await self.start(start_timeout_seconds)
                except (StartupError, OSError) as exc:
                    logger.error("sidecar restart failed: %s; next try in %.1f s", exc, delay)
                    continue
                self.restarts += 1
                logger.warning("sidecar restarted (restart %d)", self.restarts)
                if self.on_restart is not None:
                    await self.on_restart()
                break

    async def stop(self, timeout_seconds: float) -> None:
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)
        await self._terminate(timeout_seconds)

    async def _terminate(self, timeout_seconds: float) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        self.process.terminate()
        try:
            await asyncio.wait_for(self.process.wait(), timeout_seconds)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


async def start_relayer(
    settings: Settings,
    environment: Mapping[str, str],
    stack: AsyncExitStack,
    shutdown: asyncio.Event,
    failures: list[str] | None = None,
) -> Starlette:
    """Connect to the databases, start the sidecar, services and job workers; return the ASGI app.

    Everything started is registered on ``stack`` so closing it stops them in reverse order. The enclave
    runtime calls this once it has been provisioned with its secrets. If the sidecar dies later, it is
    restarted with back-off; ``shutdown`` and ``failures`` stay in the signature for the enclave runtime.
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
    limits = sidecar_limits(settings)
    sidecar = SidecarProcess(socket_path, token, sidecar_env, limits)
    await sidecar.start(settings.sidecar_start_timeout_seconds)
    # The sidecar gets the grace period of its own server plus a margin before it is killed.
    stack.push_async_callback(sidecar.stop, settings.graceful_timeout_seconds + SIDECAR_STOP_MARGIN_SECONDS)
    for name in WALLET_KEY_VARIABLES:
        os.environ.pop(name, None)
    client = SidecarClient.over_unix_socket(socket_path, token, limits)
    stack.push_async_callback(client.close)
    sidecar.on_restart = client.reconnect
    sidecar.supervise(settings.sidecar_start_timeout_seconds)
    services = await open_services(settings, sidecar=client, stack=stack)
    services.job_runner.start()
    services.expiry_sweep.start()
    app = build_app(services)
    app.state.metrics = services.metrics
    await app.state.mcp.start(stack)
    return app


def hypercorn_config(bind: str, settings: Settings | None = None) -> Config:
    """Hypercorn's limits from ``settings`` (``None``: the defaults of ``Settings``)."""
    limits = settings or Settings()
    config = Config()
    config.bind = [bind if ":" in bind or bind.startswith("fd://") else f"127.0.0.1:{bind}"]
    config.accesslog = None
    config.graceful_timeout = limits.graceful_timeout_seconds
    config.h11_max_incomplete_size = limits.max_request_head_bytes
    config.keep_alive_timeout = limits.keep_alive_timeout_seconds
    # No hypercorn read_timeout: it would also cut a client silently waiting for a long answer (ask, restore).
    # Slow bodies are bounded by the app (signed_routes.read_bounded_body: 408), idle connections by keep-alive.
    return config


async def run(settings: Settings, environment: Mapping[str, str], shutdown: asyncio.Event) -> int:
    failures: list[str] = []
    async with AsyncExitStack() as stack:
        app = await start_relayer(settings, environment, stack, shutdown, failures)
        config = hypercorn_config(settings.bind, settings)
        logger.info("relayer listening on %s", ", ".join(config.bind))
        servers = [hypercorn_serve(cast(Any, app), config, shutdown_trigger=shutdown.wait)]
        if settings.metrics_bind:
            metrics_config = hypercorn_config(settings.metrics_bind, settings)
            logger.info("operator metrics on %s", ", ".join(metrics_config.bind))
            servers.append(hypercorn_serve(cast(Any, metrics_app(app.state.metrics)), metrics_config, shutdown_trigger=shutdown.wait))
        await asyncio.gather(*servers)
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
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
