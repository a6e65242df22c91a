"""Boot steps (1)–(4) of the enclave runtime, from the environment (see runtime.py for (5)–(6)).

Environment read here (the relayer's own variables are in relayer/settings.py)::

    ENCLAVE_ATTESTER            nsm (default): /dev/nsm, never a fallback | simulator: explicit, test root
    ENCLAVE_SIMULATOR_PCRS      simulator only: pcrs.json whose PCR0/1/2 the simulator reports
    ENCLAVE_SIMULATOR_ROOT_OUT  simulator only: write the throwaway test root PEM here (for verifiers)
    ENCLAVE_TLS_HOSTNAME        SAN of the self-signed TLS certificate [localhost]
    ENCLAVE_EGRESS              host:port=unix:/path|vsock:CID:PORT, comma-separated (egress.py)
    ENCLAVE_FORWARDERS          on (default): a loopback listener per allowlisted destination, copying
                                into its tunnel (egress_forwarders.py) | off: only for a runtime that shares the
                                host's loopback (development without a network namespace)

Secrets (the provisionable names) in the environment are refused: they must arrive via /provision.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from attestation.nsm import Attester, NsmAttester
from attestation.provisioning import PROVISIONABLE_SECRETS

from .egress import EgressAllowlist
from .egress_forwarders import running_forwarders
from .errors import RuntimeConfigurationError
from .runtime import Clock, EnclaveRuntime
from .tls_identity import generate_identity

logger = logging.getLogger("memwal.tee.boot")


@dataclass(frozen=True)
class RuntimeOptions:
    """The runtime's own ENCLAVE_* settings."""

    attester: str = "nsm"  # ENCLAVE_ATTESTER: nsm | simulator
    simulator_pcrs_path: str = ""  # ENCLAVE_SIMULATOR_PCRS: pcrs.json reported by the simulator
    simulator_root_out: str = ""  # ENCLAVE_SIMULATOR_ROOT_OUT: write the simulator's test root PEM here
    tls_hostname: str = "localhost"  # ENCLAVE_TLS_HOSTNAME: SAN of the self-signed certificate
    egress: str = ""  # ENCLAVE_EGRESS: host:port=unix:/path|vsock:CID:PORT, comma-separated
    forwarders: bool = True  # ENCLAVE_FORWARDERS: on | off (loopback listeners for the allowlist)

    @classmethod
    def from_environ(cls, env: Mapping[str, str]) -> RuntimeOptions:
        options = cls(
            attester=env.get("ENCLAVE_ATTESTER", "nsm").strip() or "nsm",
            simulator_pcrs_path=env.get("ENCLAVE_SIMULATOR_PCRS", ""),
            simulator_root_out=env.get("ENCLAVE_SIMULATOR_ROOT_OUT", ""),
            tls_hostname=env.get("ENCLAVE_TLS_HOSTNAME", "localhost").strip() or "localhost",
            egress=env.get("ENCLAVE_EGRESS", ""),
            forwarders=_on_off(env.get("ENCLAVE_FORWARDERS", "on")),
        )
        if options.attester not in ("nsm", "simulator"):
            raise RuntimeConfigurationError("ENCLAVE_ATTESTER must be nsm or simulator")
        if options.attester != "simulator" and (options.simulator_pcrs_path or options.simulator_root_out):
            raise RuntimeConfigurationError("ENCLAVE_SIMULATOR_* is set but ENCLAVE_ATTESTER is not simulator")
        return options


def _on_off(text: str) -> bool:
    value = text.strip().lower() or "on"
    if value not in ("on", "off"):
        raise RuntimeConfigurationError("ENCLAVE_FORWARDERS must be on or off")
    return value == "on"


def choose_attester(options: RuntimeOptions, *, clock: Clock) -> Attester:
    """The real NSM unless the simulator was explicitly requested; never a silent fallback."""
    if options.attester == "nsm":
        return NsmAttester()  # raises NsmUnavailable outside an enclave
    from attestation.measurements import load_expected_pcrs
    from attestation.simulator import SimulatedNsm
    from attestation.testing import TestPki

    logger.warning("ENCLAVE_ATTESTER=simulator: documents are signed by a throwaway TEST root, not AWS")
    boot_pcrs: dict[int, bytes] = {}
    if options.simulator_pcrs_path:
        with open(options.simulator_pcrs_path, "rb") as file:
            boot_pcrs = dict(load_expected_pcrs(file.read(64 * 1024 + 1)).expected)
    pki = TestPki.create(now=clock())
    if options.simulator_root_out:
        with open(options.simulator_root_out, "wb") as file:
            file.write(pki.root_pem)
    return SimulatedNsm(pki=pki, clock=clock, boot_pcrs=boot_pcrs)


def build_runtime(environment: Mapping[str, str], *, clock: Clock | None = None) -> EnclaveRuntime:
    """Boot steps (1)–(4) from an environment; raises RuntimeConfigurationError / SettingsError / NsmError."""
    from relayer.settings import Settings

    clock = clock or (lambda: datetime.now(UTC))
    options = RuntimeOptions.from_environ(environment)
    settings = Settings.from_environ(environment)
    settings.validate()
    leaked = sorted(name for name in PROVISIONABLE_SECRETS if environment.get(name))
    if leaked:
        raise RuntimeConfigurationError(f"secrets must be provisioned, not passed by the host: {', '.join(leaked)}")
    egress = EgressAllowlist.parse(options.egress)
    attester = choose_attester(options, clock=clock)
    rng = _entropy(attester)
    identity = generate_identity(hostname=options.tls_hostname, now=clock(), rng=rng)
    runtime = EnclaveRuntime(
        settings=settings, environment=environment, attester=attester, identity=identity, egress=egress, clock=clock
    )
    runtime.commit()
    return runtime


def _entropy(attester: Attester) -> Callable[[int], bytes]:
    """Key material mixes the kernel RNG with the NSM's (nitriding seeds from the NSM too)."""

    def read(length: int) -> bytes:
        seed = os.urandom(32) + attester.get_random(32)
        return hashlib.shake_256(seed).digest(length)

    return read


async def run(environment: Mapping[str, str], shutdown: asyncio.Event) -> int:
    runtime = build_runtime(environment)
    if not RuntimeOptions.from_environ(environment).forwarders:
        logger.warning("ENCLAVE_FORWARDERS=off: no loopback egress listeners (development without isolation)")
        await runtime.serve(runtime.settings.bind, shutdown)
        return 0
    # The forwarders are up before the server accepts /provision, so before the relayer starts.
    async with running_forwarders(runtime.egress):
        await runtime.serve(runtime.settings.bind, shutdown)
    return 0
