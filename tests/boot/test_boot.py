"""Boot the enclave image under QEMU (TCG) and read the serial console.

    TestProductionImage   the EIF's own kernel, command line and ramdisks, unchanged: the command-line
                          virtio-mmio devices register, vsock is built in, /init runs, says it
                          skips nitro-cli's boot heartbeat (no vsock device under QEMU) and starts the
                          runtime, and the runtime reaches its first external wait (configuration
                          from the parent over vsock) with its own message
    TestOverlayBoot       the same ramdisks plus a test overlay (rdinit=/testinit): every module of the
                          image imports with the image's interpreter, and the guest reaches a TCP server
                          on the host over virtio-net (the transport the full test boot will use)
"""

from __future__ import annotations

import json
import secrets
import socket
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from enclave.configuration import WAIT_MESSAGE
from imagebuild import init_program
from tests.boot.qemu import FORWARD_ADDRESS, KERNEL_IP_ARGUMENT, BootImage, GuestForward, Qemu, overlay_ramdisk

pytestmark = [pytest.mark.boot, pytest.mark.timeout(1800)]

GUEST_INIT = Path(__file__).with_name("guest_init.py")
# The runtime's own line at its first external wait: nitro-cli passes no environment, so it asks the parent
# for its configuration over vsock (enclave/configuration.py). QEMU has no vsock device, so it keeps waiting.
RUNTIME_FIRST_STOP = WAIT_MESSAGE.format(channel="vsock")
# Printed by the kernel when it binds a device announced as virtio_mmio.device=<size>@<base>:<irq>.
COMMAND_LINE_DEVICE = "virtio-mmio: Registering device virtio-mmio.0 at 0x"
VSOCK_FAMILY = "NET: Registered PF_VSOCK protocol family"
BOOT_SECONDS = 900  # TCG on 2 shared cores: generous, this is a hang detector, not a benchmark


def report(label: str, seconds: float) -> None:
    print(f"\nboot timing: {label}: {seconds:.1f} s", file=sys.__stderr__, flush=True)


class TestProductionImage:
    def test_boots_to_the_runtime(self, enclave_image: BootImage, workdir: Path):
        with Qemu(enclave_image, workdir) as machine:
            device_at = machine.wait_for(COMMAND_LINE_DEVICE, timeout=BOOT_SECONDS)
            machine.wait_for(VSOCK_FAMILY, timeout=BOOT_SECONDS)
            init_at = machine.wait_for(init_program.STARTED_MESSAGE, timeout=BOOT_SECONDS)
            # QEMU has no vsock device here: /init says it skips nitro-cli's heartbeat and goes on.
            heartbeat_at = machine.wait_for(init_program.HEARTBEAT_ABSENT_MESSAGE, timeout=BOOT_SECONDS)
            machine.wait_for(init_program.EXEC_MESSAGE, timeout=BOOT_SECONDS)
            stop_at = machine.wait_for(RUNTIME_FIRST_STOP, timeout=BOOT_SECONDS)
            console = machine.console()
        # The kernel's own parser took the devices: a kernel without VIRTIO_MMIO_CMDLINE_DEVICES says this.
        assert "unknown parameter 'device' ignored" not in console
        before_stop = console[: console.index(RUNTIME_FIRST_STOP)]
        assert "Traceback" not in before_stop and "Kernel panic" not in before_stop
        report("production EIF, first virtio-mmio device", device_at)
        report("production EIF, /init started", init_at)
        report("production EIF, heartbeat skipped (no vsock device)", heartbeat_at)
        report("production EIF, runtime waits for its configuration", stop_at)


class HostEndpoint:
    """A one-connection TCP server on the host's loopback that answers the guest's line."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.received: dict[str, Any] | None = None
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.listener.settimeout(BOOT_SECONDS)
        try:
            connection, _ = self.listener.accept()
        except OSError:
            return
        with connection:
            connection.settimeout(60)
            line = connection.makefile("rb").readline(1024**2)
            self.received = json.loads(line)
            connection.sendall(b"ok " + str(self.received.get("token")).encode() + b"\n")

    def close(self) -> None:
        self.listener.close()
        self.thread.join(timeout=10)


class TestOverlayBoot:
    def test_every_module_imports_and_the_host_is_reachable(self, enclave_image: BootImage, workdir: Path):
        token, guest_port = secrets.token_hex(8), 9000
        endpoint = HostEndpoint(token)
        config = {"address": FORWARD_ADDRESS, "port": guest_port, "token": token}
        overlay = overlay_ramdisk(
            {"testinit": GUEST_INIT.read_bytes(), "etc/testboot.json": json.dumps(config).encode()},
            executables=frozenset({"testinit"}),
        )
        image = enclave_image.with_overlay(overlay, extra_cmdline=f"rdinit=/testinit {KERNEL_IP_ARGUMENT}")
        try:
            forward = GuestForward(guest_port=guest_port, host_port=endpoint.port)
            with Qemu(image, workdir, network=True, guest_forwards=(forward,)) as machine:
                machine.wait_for("testinit: started", timeout=BOOT_SECONDS)
                imported_at = machine.wait_for("testinit: imported", timeout=BOOT_SECONDS)
                answered_at = machine.wait_for("testinit: host answered", timeout=BOOT_SECONDS)
                console = machine.console()
        finally:
            endpoint.close()
        assert "testinit: import failed" not in console, console[console.index("testinit: import failed") :][:4000]
        assert f"testinit: host answered: ok {token}" in console
        assert endpoint.received is not None and endpoint.received["token"] == token
        assert endpoint.received["failures"] == [] and int(endpoint.received["imported"]) > 100
        report("overlay boot, every module imported", imported_at)
        report("overlay boot, host answered over virtio-net", answered_at)
