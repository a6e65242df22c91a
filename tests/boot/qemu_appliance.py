"""The appliance (devtools/appliance.py) with its enclave booted from the test EIF under QEMU.

Everything on the host is `make run`'s: PostgreSQL+pgvector and Redis on loopback TCP, the localnet
stand-ins, one manifest, ``python -m host_proxy --manifest … --transport tcp:127.0.0.1+OFFSET``, and the
operator who attests and provisions. Only the enclave differs: instead of a process in a network
namespace, it is the test EIF (tests/boot/overlay.py) under QEMU, whose only ways out are these forwards
(QEMU user networking with ``restrict=on``)::

    guest 10.0.2.100:7000     → host 127.0.0.1:7000+OFFSET   configuration channel (host proxy serves the manifest)
    guest 10.0.2.100:7001-3   → host 127.0.0.1:700N+OFFSET   the parent's credentials, log and time services
    guest 10.0.2.100:81NN     → host 127.0.0.1:81NN+OFFSET   one egress route each (host proxy → upstream)
    guest 10.0.2.100:6999     → `cat measurements.json`       the test EIF's PCR0/1/2 for the simulator
    host 127.0.0.1:8443+OFFSET → guest :8443                   ingress (host proxy dials it; TLS inside)

Clients use the host proxy's public ingress (``appliance.url``). OFFSET moves every host-side port to
a free range; the guest keeps the manifest's numbers.
"""

from __future__ import annotations

import asyncio
import json
import random
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
from memwal.types import MemWalConfig

from attestation.binding import EnclavePolicy
from attestation.policy import PCRs
from devtools.appliance import Appliance, ApplianceError
from devtools.processes import ChildProcess, child_environment
from devtools.simulated_enclave import ROOT_PEM_BEGIN, ROOT_PEM_END
from manifest import CONFIGURATION_PORT, CREDENTIALS_PORT, LOGS_PORT, TIME_PORT
from memwal_enclave.sdk import AttestedMemWal, EnclaveConnection
from tests.boot import guest_init
from tests.boot.overlay import TestImage
from tests.boot.qemu import BootFailure, BootImage, GuestFile, GuestForward, HostForward, Qemu, keep_artifacts

INGRESS_PORT = 8443  # devtools/appliance_layout.py's, in the manifest
# The channels the enclave dials on its parent besides egress (manifest.model); the host proxy serves
# credentials only when [host] aws_credentials is set, which the appliance does not.
PARENT_SERVICE_PORTS = (CONFIGURATION_PORT, CREDENTIALS_PORT, LOGS_PORT, TIME_PORT)
LISTENING_SERVICE_PORTS = (CONFIGURATION_PORT, LOGS_PORT, TIME_PORT)
GUEST_MEMORY_MIB = 2048  # nitro-cli needs ≥ 4 × the EIF (≈ 440 MiB); the runtime, relayer and sidecar run in it
BOOT_SECONDS = 1200.0  # TCG on 2 shared cores: a hang detector, not a benchmark
OFFSET_ATTEMPTS = 50
# hypercorn's own line once it accepts (enclave/runtime.py logs before hypercorn starts, which takes TCG seconds).
SERVING_MESSAGE = f"Running on https://0.0.0.0:{INGRESS_PORT}"
# Every request crosses TCG: a first TLS handshake or the relayer's start can take tens of seconds.
GUEST_HTTP_TIMEOUT = httpx.Timeout(180.0, connect=120.0)


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_offset(ports: list[int], *, rng: random.Random | None = None) -> int:
    """An offset K with every ``port + K`` free on 127.0.0.1 (channel N is host TCP port N+K)."""
    rng = rng or random.Random()
    for _ in range(OFFSET_ATTEMPTS):
        offset = rng.randrange(10_000, 65_535 - max(ports))
        if all(port_is_free(port + offset) for port in ports):
            return offset
    raise ApplianceError(f"no free port range for {len(ports)} channels after {OFFSET_ATTEMPTS} tries")


def simulator_root_from_console(console: str) -> bytes:
    """The simulator's test root PEM, which ``--test-root-out -`` prints between markers."""
    start, end = console.index(ROOT_PEM_BEGIN) + len(ROOT_PEM_BEGIN), console.index(ROOT_PEM_END)
    return console[start:end].strip().replace("\r\n", "\n").encode("ascii") + b"\n"


class QemuAppliance(Appliance):
    """``Appliance`` whose enclave is ``test_image`` booted under QEMU; ``machine`` is the running QEMU."""

    ready_timeout_seconds = 900.0  # under TCG the sidecar and relayer import and start many times slower

    def __init__(self, data_dir: Path, test_image: TestImage, *, artifacts_name: str = "full-test-boot", **options: Any) -> None:
        super().__init__(data_dir, port=0, isolate=True, **options)  # QEMU is the isolation: its own machine
        self.test_image = test_image
        self.artifacts_name = artifacts_name
        self.offset = 0
        self.machine: Qemu | None = None

    @property
    def workdir(self) -> Path:
        return self.layout.data_dir / "qemu"

    def attested_session(self, *, expected_pcrs: Mapping[int, bytes] | None = None, **options: Any):
        options.setdefault("timeout", GUEST_HTTP_TIMEOUT)
        return super().attested_session(expected_pcrs=expected_pcrs, **options)

    def attested_memwal(self, key: str, account_id: str, *, namespace: str) -> AttestedMemWal:
        """The official SDK through the attested client (memwal_enclave), pinned like ``attested_session``."""
        policy = EnclavePolicy((PCRs(self.expected_pcrs),), (self.configuration_digest,), self.trust_root())
        connection = EnclaveConnection(self.url, policy=policy, timeout=GUEST_HTTP_TIMEOUT)
        return AttestedMemWal(MemWalConfig(key=key, account_id=account_id, server_url=self.url, namespace=namespace), connection=connection)

    def enclave_description(self) -> str:
        return "a QEMU guest booted from the test EIF (user networking, restrict=on: only the forwards)"

    def host_transport(self) -> str:
        return f"tcp:127.0.0.1+{self.offset}"

    async def _start_host_proxy(self) -> None:
        channel_ports = [*PARENT_SERVICE_PORTS, INGRESS_PORT, *(route.vsock_port for route in self.routes)]
        self.offset = free_offset(channel_ports)
        log = self.layout.logs / "host-proxy.log"
        arguments = ["-m", "host_proxy", "--manifest", str(self.layout.manifest_path), "--transport", self.host_transport()]
        proxy = await self._start_child(ChildProcess("host-proxy", arguments, child_environment(), log))
        listening = [
            self.layout.port,
            *(port + self.offset for port in LISTENING_SERVICE_PORTS),
            *(route.vsock_port + self.offset for route in self.routes),
        ]
        await proxy.wait_until(lambda: not any(port_is_free(port) for port in listening), f"the host proxy did not start (see {log})")

    async def _start_enclave(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        measured = self.test_image.measurements
        self.expected_pcrs = {0: measured.pcr0, 1: measured.pcr1, 2: measured.pcr2}
        measurements = self.workdir / "measurements.json"
        measurements.write_text(json.dumps({f"PCR{index}": value.hex() for index, value in self.expected_pcrs.items()}))
        test_eif = self.workdir / "test.eif"
        test_eif.write_bytes(self.test_image.eif_bytes)
        forwards: tuple[GuestForward | GuestFile, ...] = (
            GuestFile(guest_init.MEASUREMENTS_PORT, measurements),
            *(GuestForward(port, port + self.offset) for port in PARENT_SERVICE_PORTS),
            *(GuestForward(route.vsock_port, route.vsock_port + self.offset) for route in self.routes),
        )
        machine = Qemu(
            BootImage.from_eif(test_eif), self.workdir, memory_mib=GUEST_MEMORY_MIB, network=True,
            guest_forwards=forwards, host_forwards=(HostForward(INGRESS_PORT + self.offset, INGRESS_PORT),),
        )  # fmt: skip
        self._stack.callback(keep_artifacts, self.workdir, self.artifacts_name)
        self._stack.callback(machine.stop)
        self.machine = machine.start()
        self._progress(f"  QEMU (TCG) boots {test_eif.name}; console {machine.console_path}")
        await self._console("imported", guest_init.IMPORTED_MESSAGE)
        await self._console("serving", SERVING_MESSAGE)
        self.layout.test_root_path.write_bytes(simulator_root_from_console(machine.console()))

    async def _console(self, key: str, text: str) -> None:
        """Wait (off the event loop) until the guest prints ``text``; record the seconds since QEMU started."""
        assert self.machine is not None
        started = time.monotonic()
        try:
            self.timings[f"qemu_{key}"] = await asyncio.to_thread(self.machine.wait_for, text, timeout=BOOT_SECONDS)
        except BootFailure as failure:
            raise ApplianceError(f"the QEMU guest did not print {text!r} ({time.monotonic() - started:.0f} s): {failure}") from None
