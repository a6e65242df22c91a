"""Enclave-runtime fixtures: a simulator-backed runtime serving real TLS on a loopback socket.

Time: the simulator, the test PKI, TLS certificates and the client all use the real clock, because
OpenSSL checks certificate validity against it; tests that need "later" shift only the client's clock.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Mapping
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
from manifest import EgressRoute, EnclaveDocument
from manifest.model import url_destination
from manifest.variables import RELAYER_VARIABLES, URL_LIST_VARIABLES, URL_VARIABLES
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


def document_for(relayer: Mapping[str, str] = BASE_ENVIRONMENT, *, tls_hostname: str = "enclave.test") -> EnclaveDocument:
    """An enclave document with ``relayer``'s manifest variables and an egress route for each URL they name."""
    variables = {name: value for name, value in relayer.items() if name in RELAYER_VARIABLES}
    urls = [(name, variables[name]) for name in URL_VARIABLES if variables.get(name)]
    urls += [(name, url) for name in URL_LIST_VARIABLES for url in variables.get(name, "").split(",") if url]
    destinations = sorted({url_destination(name, url) for name, url in urls})
    egress = [
        EgressRoute(f"upstream-{index}", host, port, 8101 + index).as_json() for index, (host, port) in enumerate(destinations)
    ]
    return EnclaveDocument.from_mapping(
        {"format": 1, "enclave": {"tls_hostname": tls_hostname}, "relayer": variables, "egress": egress}
    )


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


def make_runtime(pki: TestPki, *, boot_pcrs=IMAGE_PCRS, environment=None, starter=None, egress="", document=None, **options):
    """A committed runtime with a simulated NSM; ``environment`` is the relayer's (non-secret) environment."""
    environment = dict(BASE_ENVIRONMENT if environment is None else environment)
    Settings.from_environ(environment).validate()
    attester = SimulatedNsm(pki=pki, clock=real_now, boot_pcrs=boot_pcrs)
    options.setdefault("trust_root", pki.trust_root())
    runtime = EnclaveRuntime(
        document=document or document_for(environment),
        relayer_environment=environment,
        attester=attester,
        identity=generate_identity(hostname="enclave.test", now=real_now()),
        egress=egress if isinstance(egress, EgressAllowlist) else EgressAllowlist.parse(egress),
        clock=real_now,
        relayer_starter=starter or RelayerStarter(),
        **options,
    )
    runtime.commit()
    return runtime


def listening_socket() -> tuple[socket.socket, int]:
    """A listening loopback socket for the runtime to serve on; returns (socket, port)."""
    sock = socket.create_server(("127.0.0.1", 0))
    return sock, sock.getsockname()[1]


@asynccontextmanager
async def serving(runtime: EnclaveRuntime):
    """Serve the runtime over real TLS until the block ends; yields its https URL."""
    sock, port = listening_socket()
    shutdown = asyncio.Event()
    task = asyncio.create_task(runtime.serve(sock, shutdown))
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
        sock.close()


def document_with(document: EnclaveDocument, *, egress=(), provisioning=None) -> EnclaveDocument:
    """``document`` with more [[egress]] routes and a [provisioning] section (a mapping, as in TOML)."""
    data = document.as_json()
    data["egress"] = [*data["egress"], *(route.as_json() for route in egress)]
    if provisioning is not None:
        data["provisioning"] = provisioning
    return EnclaveDocument.from_mapping(data)
