"""The boot sequence, from a :class:`~enclave.platform.Platform` (see runtime.py for serving).

    (1) configuration  fetch the enclave document from the parent and validate it (configuration.py)
    (2) settings       the relayer's environment: the document's [relayer] variables, nothing from the host
    (3) attester       opened only now (the NSM on Nitro), so a bad configuration fails before it
    (4) resolver       the document's hosts table → the image's /etc/hosts (names → loopback forwarders)
    (5) identity       TLS, Ed25519 and X25519 keys from SHAKE-256(platform entropy ‖ NSM GetRandom)
    (6) commitment     PCR16 ← SHA-384(canonical document), locked
    (7) listen         egress forwarders, then the ingress listener (vsock:ANY:ingress_port on Nitro) and the
                       operator metrics listener (vsock:ANY:manifest.METRICS_PORT; plain HTTP, never public)
    (8) serve          attested TLS; the relayer starts once the manifest's [provisioning] sources deliver

Logs go to the parent's log channel from the start (log_forwarding.py: redacted, no payloads).

Secrets (the provisionable names), configuration variables and the runtime's own variables in the
*process* environment are refused: the configuration comes only from the committed document, the secrets
only through sealed provisioning. What the relayer does see of the process environment is PASSED_VARIABLES.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from attestation.nsm import Attester
from host_proxy.addresses import Endpoint, listen_socket, remove_unix_socket
from manifest import CREDENTIALS_PORT, LOGS_PORT, METRICS_PORT, TIME_PORT, EnclaveDocument
from manifest.variables import PROVISIONABLE_SECRETS, RELAYER_VARIABLES, RUNTIME_VARIABLES

from .clock_sync import SyncedClock, keep_time
from .configuration import fetch_enclave_document
from .egress import EgressAllowlist
from .egress_forwarders import running_forwarders
from .errors import RuntimeConfigurationError
from .log_forwarding import ParentLogHandler, Redactions, SafeJsonFormatter
from .parent_credentials import parent_credentials
from .platform import Platform, Random
from .runtime import EnclaveRuntime
from .tls_identity import generate_identity

logger = logging.getLogger("memwal.enclave.boot")

# The only process variables the relayer and sidecar inherit: where Python and its packages are.
PASSED_VARIABLES = ("PATH", "HOME", "LANG", "TZ", "PYTHONPATH", "PYTHONHASHSEED", "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED")
INGRESS_BACKLOG = 512
METRICS_BACKLOG = 16
LOG_DRAIN_SECONDS = 2.0
RelayerStarter = Callable[..., Awaitable[Any]]


def relayer_environment(document: EnclaveDocument, platform: Platform) -> dict[str, str]:
    """Step (2): the environment the relayer and sidecar run with (before secrets are merged in)."""
    refused = RELAYER_VARIABLES | RUNTIME_VARIABLES | PROVISIONABLE_SECRETS
    present = sorted(name for name in refused if platform.environment.get(name))
    if present:
        raise RuntimeConfigurationError(
            "configuration comes only from the parent's enclave document and secrets only from provisioning; "
            f"the process environment sets {', '.join(present)}"
        )
    environment = {name: platform.environment[name] for name in PASSED_VARIABLES if name in platform.environment}
    environment.update(document.relayer_environment)
    environment.update({"MEMWAL_DATA_DIR": str(platform.data_directory), "LOG_FORMAT": "json"})
    if document.plaintext_destinations:  # the committed [[egress]] routes marked allow_plaintext
        environment["EGRESS_PLAINTEXT_DESTINATIONS"] = ",".join(document.plaintext_destinations)
    return environment


def build_runtime(
    document: EnclaveDocument,
    platform: Platform,
    *,
    relayer_starter: RelayerStarter | None = None,
    redactions: Redactions | None = None,
) -> EnclaveRuntime:
    """Steps (2)–(6); raises SettingsError, NsmError, RuntimeConfigurationError or OSError."""
    from relayer.settings import Settings

    environment = relayer_environment(document, platform)
    Settings.from_environ(environment).validate()
    attester = platform.attester()
    if platform.hosts_file is not None:
        write_hosts_file(platform.hosts_file, document)
    identity = generate_identity(hostname=document.tls_hostname, now=platform.clock(), rng=_entropy(attester, platform.entropy))
    runtime = EnclaveRuntime(
        document=document,
        relayer_environment=environment,
        attester=attester,
        identity=identity,
        egress=EgressAllowlist.from_document(document, platform.channels),
        clock=platform.clock,
        relayer_starter=relayer_starter,
        trust_root=platform.trust_root,
        credentials=parent_credentials(platform.channels.to_parent(CREDENTIALS_PORT)),
        redactions=redactions,
    )
    runtime.commit()
    return runtime


def write_hosts_file(path: Path, document: EnclaveDocument) -> None:
    """Step (4): replace ``path`` atomically with the document's hosts table."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(document.hosts_file(), encoding="ascii")
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)
    logger.info("wrote %s: %d egress name(s) → loopback forwarders", path, len(document.hosts_table()))


def open_ingress(endpoint: Endpoint) -> socket.socket:
    """Step (7): the listening socket hypercorn serves on (AF_VSOCK on Nitro; AF_UNIX or TCP elsewhere)."""
    sock = listen_socket(endpoint, backlog=INGRESS_BACKLOG)
    logger.info("ingress listening on %s", endpoint)
    return sock


def _entropy(attester: Attester, entropy: Random) -> Random:
    """Key material mixes the platform's RNG with the NSM's (nitriding seeds from the NSM too)."""

    def read(length: int) -> bytes:
        return hashlib.shake_256(entropy(32) + attester.get_random(32)).digest(length)

    return read


async def run(platform: Platform, shutdown: asyncio.Event) -> int:
    """Boot and serve until ``shutdown``; 0 after a clean stop (also when stopped while still waiting)."""
    redactions = Redactions()
    forwarding = _forward_logs(platform, redactions) if platform.forward_logs else None
    try:
        return await _boot(platform, shutdown, redactions)
    finally:
        if forwarding is not None:
            handler, task = forwarding
            await handler.drained(LOG_DRAIN_SECONDS)  # the last lines (why it stopped) matter most
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            logging.getLogger().removeHandler(handler)


def _forward_logs(platform: Platform, redactions: Redactions) -> tuple[ParentLogHandler, asyncio.Task[None]]:
    """Every log line, redacted, also to the parent's log channel; the console gets the same safe format."""
    handler = ParentLogHandler(redactions)
    root = logging.getLogger()
    for console in root.handlers:
        console.setFormatter(SafeJsonFormatter(redactions))
    root.addHandler(handler)
    return handler, asyncio.create_task(handler.forward(platform.channels.to_parent(LOGS_PORT)))


async def _boot(platform: Platform, shutdown: asyncio.Event, redactions: Redactions) -> int:
    document = await _until_shutdown(fetch_enclave_document(platform.channels, backoff=platform.backoff), shutdown)
    if document is None:
        logger.info("stopped while waiting for configuration")
        return 0
    synced = SyncedClock(platform.clock)
    platform = dataclasses.replace(platform, clock=synced)
    runtime = build_runtime(document, platform, redactions=redactions)
    timekeeping = None
    if platform.keep_time:
        timekeeping = asyncio.create_task(
            keep_time(synced, platform.channels.to_parent(TIME_PORT), runtime.attester, system_clock=platform.system_clock)
        )
    try:
        return await _serve_runtime(runtime, platform, document, shutdown)
    finally:
        if timekeeping is not None:
            timekeeping.cancel()
            await asyncio.gather(timekeeping, return_exceptions=True)


async def _serve_runtime(runtime: EnclaveRuntime, platform: Platform, document: EnclaveDocument, shutdown: asyncio.Event) -> int:
    endpoint = platform.channels.listen(document.ingress_port)
    metrics_endpoint = platform.channels.listen(METRICS_PORT)
    if not platform.forwarders:
        logger.warning("egress forwarders are off: only for development without a network namespace")
        await _serve(runtime, endpoint, metrics_endpoint, shutdown)
        return 0
    # The forwarders are up before the server accepts /provision, so before the relayer starts.
    async with running_forwarders(runtime.egress):
        await _serve(runtime, endpoint, metrics_endpoint, shutdown)
    return 0


async def _serve(runtime: EnclaveRuntime, endpoint: Endpoint, metrics_endpoint: Endpoint, shutdown: asyncio.Event) -> None:
    listener = open_ingress(endpoint)
    metrics_listener = listen_socket(metrics_endpoint, backlog=METRICS_BACKLOG)
    try:
        await runtime.serve(listener, shutdown, metrics_listener=metrics_listener)
    finally:
        listener.close()
        metrics_listener.close()
        remove_unix_socket(endpoint)
        remove_unix_socket(metrics_endpoint)


async def _until_shutdown(work: Awaitable[EnclaveDocument], shutdown: asyncio.Event) -> EnclaveDocument | None:
    task = asyncio.ensure_future(work)
    stop = asyncio.ensure_future(shutdown.wait())
    try:
        await asyncio.wait((task, stop), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for pending in (task, stop):
            if not pending.done():
                pending.cancel()
        await asyncio.gather(task, stop, return_exceptions=True)
    return task.result() if task.done() and not task.cancelled() else None
