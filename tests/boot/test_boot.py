"""Boot the production enclave image under QEMU (TCG) and read the serial console.

The EIF's own kernel, command line and ramdisks, unchanged: the command-line virtio-mmio devices
register, vsock is built in, /init runs, says it skips nitro-cli's boot heartbeat (QEMU has no vsock
device here) and starts the runtime, and the runtime reaches its first external wait (configuration
from the parent over vsock) with its own message. Beyond that wait it needs a parent and an NSM, which
QEMU cannot provide: test_full_boot.py boots the same application ramdisk the rest of the way.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from enclave.configuration import WAIT_MESSAGE
from imagebuild import init_program
from tests.boot.qemu import BootImage, Qemu, report_timing

pytestmark = [pytest.mark.boot, pytest.mark.timeout(1800)]

# The runtime's own line at its first external wait: nitro-cli passes no environment, so it asks the parent
# for its configuration over vsock (enclave/configuration.py). QEMU has no vsock device, so it keeps waiting.
RUNTIME_FIRST_STOP = WAIT_MESSAGE.format(channel="vsock")
# Printed by the kernel when it binds a device announced as virtio_mmio.device=<size>@<base>:<irq>.
COMMAND_LINE_DEVICE = "virtio-mmio: Registering device virtio-mmio.0 at 0x"
VSOCK_FAMILY = "NET: Registered PF_VSOCK protocol family"
BOOT_SECONDS = 900  # TCG on 2 shared cores: generous, this is a hang detector, not a benchmark


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
        report_timing("production EIF, first virtio-mmio device", device_at)
        report_timing("production EIF, /init started", init_at)
        report_timing("production EIF, heartbeat skipped (no vsock device)", heartbeat_at)
        report_timing("production EIF, runtime waits for its configuration", stop_at)
