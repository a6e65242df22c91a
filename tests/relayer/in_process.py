"""The relayer app in this process, reached through httpx.ASGITransport, with real PostgreSQL, Redis and localnet.

Its sidecar is the real sidecar app (tests/sidecar/in_process.py) behind an ASGI transport that records which
operations the relayer called, so tests can count sidecar round trips.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import redis.asyncio as redis

from localnet.cli import CreatedAccount
from localnet.environment import relayer_configuration, relayer_secrets
from memwal_common.secret import Secret
from relayer.app import build_app
from relayer.database.pool import Database
from relayer.serve import sidecar_limits
from relayer.services import Services, open_services
from relayer.settings import Settings
from relayer.sidecar_client import SidecarApi, SidecarClient
from tests.e2e.signing import seal_session_header, signed_headers
from tests.sidecar.in_process import SIDECAR_TOKEN, sidecar_app

TEST_ENV = {
    "RATE_LIMIT_DELEGATE_KEY_PER_MINUTE": "5000",
    "RATE_LIMIT_REQUESTS_PER_MINUTE": "5000",
    "RATE_LIMIT_REQUESTS_PER_HOUR": "50000",
    "WALLET_JOB_CONCURRENCY": "2",
}


class RecordingTransport(httpx.ASGITransport):
    """An ASGI transport that remembers the path of every request it carried."""

    def __init__(self, app: Any, paths: list[str]) -> None:
        super().__init__(app=app)
        self.paths = paths

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return await super().handle_async_request(request)


def relayer_environment(info: Mapping[str, Any], *, database_url: str, redis_url: str, **overrides: str) -> dict[str, str]:
    return {
        **relayer_configuration(info),
        "OPENAI_API_KEY": relayer_secrets(info)["OPENAI_API_KEY"],
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        **TEST_ENV,
        **overrides,
    }


async def in_process_sidecar(info: Mapping[str, Any], stack: AsyncExitStack, settings: Settings, paths: list[str]) -> SidecarClient:
    app = await sidecar_app(info, stack)
    client = SidecarClient(RecordingTransport(app, paths), Secret(SIDECAR_TOKEN), sidecar_limits(settings))
    stack.push_async_callback(client.close)
    return client


@dataclass
class Relayer:
    """One relayer app under test and the localnet it talks to."""

    services: Services
    client: httpx.AsyncClient
    info: Mapping[str, Any]
    sidecar_paths: list[str] = field(default_factory=list)

    def operations(self) -> list[str]:
        """The sidecar operations called since ``sidecar_paths`` was cleared, without the background health probes."""
        return [path for path in self.sidecar_paths if path != "/health"]

    async def call(
        self, account: CreatedAccount, method: str, path: str, payload: dict[str, Any] | None = None, *,
        session: bool = False, headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        body = json.dumps(payload, separators=(",", ":")).encode() if payload is not None else b""
        seed = bytes.fromhex(account.delegate_private_key_hex)
        signed = signed_headers(seed, method, path, body, account_id=account.account_id)
        if session:
            signed["x-seal-session"] = seal_session_header(seed, self.info["memwal_package_id"])
        return await self.client.request(method, path, content=body or None, headers={**signed, **(headers or {})})


async def open_relayer(
    info: Mapping[str, Any], stack: AsyncExitStack, *, database_url: str, redis_url: str, env: Mapping[str, str] | None = None,
    database: Database | None = None, cache: redis.Redis | None = None, sidecar: SidecarApi | None = None,
    start_jobs: bool = True, clock: Callable[[], datetime] | None = None,
) -> Relayer:
    """Build the relayer like ``relayer.serve`` does, with overrides for the dependencies a test breaks."""
    settings = Settings.from_environ(relayer_environment(info, database_url=database_url, redis_url=redis_url, **(env or {})))
    settings.validate()
    paths: list[str] = []
    if sidecar is None:
        sidecar = await in_process_sidecar(info, stack, settings, paths)
    services = await open_services(settings, sidecar=sidecar, stack=stack, database=database, cache=cache,
                                   **({} if clock is None else {"clock": clock}))
    if start_jobs:
        services.job_runner.start()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(services)), base_url="http://relayer")
    stack.push_async_callback(client.aclose)
    return Relayer(services, client, info, paths)
