"""Enclave-runtime fixtures: a simulator-backed runtime serving real TLS on a loopback socket.

Time: the simulator, the test PKI, TLS certificates and the client all use the real clock, because
OpenSSL checks certificate validity against it; tests that need "later" shift only the client's clock.
"""

from __future__ import annotations

import asyncio
import json
import socket
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from attestation.policy import PCRs
from attestation.simulator import SimulatedNsm
from attestation.testing import TestPki, deterministic_rng
from enclave.egress import EgressAllowlist
from enclave.runtime import EnclaveRuntime
from enclave.tls_identity import generate_identity
from relayer.settings import Settings

IMAGE_PCRS = {0: bytes.fromhex("aa" * 48), 1: bytes.fromhex("bb" * 48), 2: bytes.fromhex("cc" * 48)}
DEBUG_PCRS = {0: bytes(48), 1: bytes(48), 2: bytes(48)}
BASE_ENVIRONMENT = {
    "MEMWAL_PACKAGE_ID": "0x" + "11" * 32,
    "MEMWAL_REGISTRY_ID": "0x" + "22" * 32,
    "SUI_NETWORK": "testnet",
    "SUI_RPC_URL": "https://fullnode.testnet.sui.io:443",
    "WALRUS_PUBLISHER_URL": "https://publisher.walrus.test",
    "WALRUS_AGGREGATOR_URLS": "https://aggregator.walrus.test",
    "SEAL_SERVER_CONFIGS": json.dumps([{"objectId": "0x" + "33" * 32, "weight": 1}]),
    "SEAL_THRESHOLD": "1",
}


def real_now() -> datetime:
    return datetime.now(UTC)


def expected_pcrs(pcrs=IMAGE_PCRS) -> PCRs:
    return PCRs(pcrs)


@pytest.fixture(scope="session")
def tee_pki() -> TestPki:
    return TestPki.create(now=real_now() - timedelta(hours=1), rng=deterministic_rng(b"tee tests pki"))


def fake_relayer() -> Starlette:
    """Stands in for relayer.serve.start_relayer's app in the fast tests."""

    async def echo(request: Request) -> JSONResponse:
        body = await request.body()
        return JSONResponse({"echo": body.decode(), "query": request.url.query})

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "version": "test"})

    return Starlette(routes=[Route("/api/echo", echo, methods=["GET", "POST"]), Route("/health", health)])


class RelayerStarter:
    """Records what the runtime passes to start_relayer and returns the fake app."""

    def __init__(self) -> None:
        self.calls: list[tuple[Settings, dict]] = []

    async def __call__(self, settings, environment, stack, shutdown):
        self.calls.append((settings, dict(environment)))
        return fake_relayer()


def make_runtime(pki: TestPki, *, boot_pcrs=IMAGE_PCRS, environment=None, starter=None, egress="", **options):
    environment = dict(BASE_ENVIRONMENT if environment is None else environment)
    settings = Settings.from_environ(environment)
    settings.validate()
    attester = SimulatedNsm(pki=pki, clock=real_now, boot_pcrs=boot_pcrs)
    runtime = EnclaveRuntime(
        settings=settings,
        environment=environment,
        attester=attester,
        identity=generate_identity(hostname="enclave.test", now=real_now()),
        egress=EgressAllowlist.parse(egress),
        clock=real_now,
        relayer_starter=starter or RelayerStarter(),
        **options,
    )
    runtime.commit()
    return runtime


def listening_socket() -> tuple[int, int]:
    """A bound loopback socket handed to hypercorn as fd://N; returns (fd, port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    return sock.detach(), port


@asynccontextmanager
async def serving(runtime: EnclaveRuntime):
    """Serve the runtime over real TLS until the block ends; yields its https URL."""
    fd, port = listening_socket()
    shutdown = asyncio.Event()
    task = asyncio.create_task(runtime.serve(f"fd://{fd}", shutdown))
    for _ in range(200):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            await writer.wait_closed()
            break
        except OSError:
            await asyncio.sleep(0.02)
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        shutdown.set()
        await asyncio.wait_for(task, 30)
