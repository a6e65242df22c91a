"""Boot an enclave image under QEMU: the pieces every boot test shares (test code, never in the image).

    BootImage.from_eif(path)        kernel, command line and ramdisks read out of an EIF (imagebuild.eif)
    Qemu(image, ...).start()        `-M microvm,acpi=off` (virtio-mmio devices announced on the kernel command
                                    line, as Nitro does), serial console to a file, virtio-rng standing in for
                                    the NSM hardware RNG, optional virtio-net with user networking
    machine.wait_for(text)          read the console until `text`, QEMU's exit, or the deadline

Networking is QEMU's user stack with `restrict=on`: the guest reaches nothing but the explicit forwards,
`GuestForward` (guest connects to 10.0.2.100:port, QEMU runs socat to 127.0.0.1:port on the host, one per
connection), `GuestFile` (guest connects to 10.0.2.100:port and reads a host file) and `HostForward`
(host 127.0.0.1:port -> guest port), so a test only ever talks to its own loopback servers.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from imagebuild import eif

QEMU = "qemu-system-x86_64"
GUEST_ADDRESS = "10.0.2.15"
GATEWAY_ADDRESS = "10.0.2.2"
FORWARD_ADDRESS = "10.0.2.100"  # guestfwd targets live here; restrict=on leaves the gateway unreachable
# Static IPv4 for the guest's eth0 through the kernel's IP_PNP (no DHCP in the kernel, none needed).
KERNEL_IP_ARGUMENT = f"ip={GUEST_ADDRESS}::{GATEWAY_ADDRESS}:255.255.255.0::eth0:off"
DEFAULT_MEMORY_MIB = 1024
# Every instruction-set extension TCG emulates (Nitro hosts are recent Xeon/EPYC, and wheels such as
# numpy's need more than the qemu64 baseline), but no RDRAND/RDSEED: the guest's randomness must come
# from the virtio RNG, which plays the NSM hardware RNG's part, so the boot proves it does not need them.
CPU_MODEL = "max,rdrand=off,rdseed=off"
POLL_SECONDS = 0.2
MAX_CONSOLE_BYTES = 64 * 1024**2


class BootFailure(AssertionError):
    """The guest did not print what was expected in time; the message carries the console tail."""


@dataclass(frozen=True)
class BootImage:
    kernel: bytes
    cmdline: str
    ramdisks: tuple[bytes, ...]

    @classmethod
    def from_eif(cls, path: Path) -> BootImage:
        image = eif.parse(path.read_bytes())
        return cls(image.kernel, image.cmdline.decode(), tuple(image.ramdisks))


@dataclass(frozen=True)
class GuestForward:
    """The guest connects to FORWARD_ADDRESS:guest_port; QEMU connects to 127.0.0.1:host_port.

    The `cmd:` form starts one socat per guest connection; the `tcp:` chardev form would connect once,
    when QEMU starts, and carry a single connection."""

    guest_port: int
    host_port: int

    def argument(self) -> str:
        return f"guestfwd=tcp:{FORWARD_ADDRESS}:{self.guest_port}-cmd:socat - TCP:127.0.0.1:{self.host_port}"


@dataclass(frozen=True)
class GuestFile:
    """The guest connects to FORWARD_ADDRESS:guest_port and reads ``path`` (QEMU runs `cat` per connection)."""

    guest_port: int
    path: Path

    def argument(self) -> str:
        if "," in str(self.path):  # QEMU's option syntax would split the path there
            raise ValueError(f"{self.path}: a comma cannot be passed in a QEMU forward")
        return f"guestfwd=tcp:{FORWARD_ADDRESS}:{self.guest_port}-cmd:cat {self.path}"


@dataclass(frozen=True)
class HostForward:
    """The host connects to 127.0.0.1:host_port; QEMU connects to the guest's guest_port (ingress)."""

    host_port: int
    guest_port: int

    def argument(self) -> str:
        return f"hostfwd=tcp:127.0.0.1:{self.host_port}-:{self.guest_port}"


@dataclass
class Qemu:
    image: BootImage
    workdir: Path
    memory_mib: int = DEFAULT_MEMORY_MIB
    cpus: int = 2
    cpu_model: str = CPU_MODEL
    network: bool = False
    guest_forwards: tuple[GuestForward | GuestFile, ...] = ()
    host_forwards: tuple[HostForward, ...] = ()
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    started_at: float = field(default=0.0, init=False)

    @property
    def console_path(self) -> Path:
        return self.workdir / "console.log"

    def command(self) -> list[str]:
        executable = shutil.which(QEMU)
        if executable is None:
            raise BootFailure(f"{QEMU} is not installed: run scripts/system-deps.sh (Debian package qemu-system-x86)")
        kernel, initrd = self.workdir / "bzImage", self.workdir / "initrd.cpio"
        command = [
            executable, "-M", "microvm,acpi=off", "-cpu", self.cpu_model, "-smp", str(self.cpus), "-m", str(self.memory_mib),
            "-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
            "-chardev", f"file,id=console,path={self.console_path}", "-serial", "chardev:console",
            "-kernel", str(kernel), "-initrd", str(initrd), "-append", self.image.cmdline,
            "-device", "virtio-rng-device",
        ]
        if self.network:
            forwards = [item.argument() for item in self.guest_forwards] + [item.argument() for item in self.host_forwards]
            command += ["-netdev", ",".join(["user", "id=net0", "restrict=on", *forwards]), "-device", "virtio-net-device,netdev=net0"]
        return command

    def start(self) -> Qemu:
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "bzImage").write_bytes(self.image.kernel)
        # The kernel unpacks concatenated newc archives in order (each is padded to 4 bytes), as Nitro
        # hands it the EIF's ramdisks one after the other.
        (self.workdir / "initrd.cpio").write_bytes(b"".join(self.image.ramdisks))
        self.console_path.write_bytes(b"")
        self.started_at = time.monotonic()
        with open(self.workdir / "qemu.log", "wb") as log:
            self.process = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        return self

    def console(self) -> str:
        with open(self.console_path, "rb") as handle:
            return handle.read(MAX_CONSOLE_BYTES).decode("utf-8", errors="replace")

    def elapsed(self) -> float:
        return time.monotonic() - self.started_at

    def wait_for(self, text: str, *, timeout: float) -> float:
        """Seconds since start when `text` appeared on the console; BootFailure otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            if text in self.console():
                return self.elapsed()
            exited = self.process is not None and self.process.poll() is not None
            if exited or time.monotonic() > deadline:
                if text in self.console():
                    return self.elapsed()
                reason = "QEMU exited" if exited else f"no {text!r} within {timeout:.0f} s"
                raise BootFailure(f"{reason}; console tail:\n{self.console()[-4000:]}\nqemu: {self.qemu_log()[-1000:]}")
            time.sleep(POLL_SECONDS)

    def qemu_log(self) -> str:
        path = self.workdir / "qemu.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> Qemu:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def report_timing(label: str, seconds: float) -> None:
    """One "boot timing:" line on the real stderr (pytest captures the rest); CI logs collect them."""
    print(f"\nboot timing: {label}: {seconds:.1f} s", file=sys.__stderr__, flush=True)


def keep_artifacts(workdir: Path, name: str) -> None:
    """Copy the console and QEMU logs to BOOT_TEST_ARTIFACTS (CI keeps them) when it is set."""
    target = os.environ.get("BOOT_TEST_ARTIFACTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        for log in ("console.log", "qemu.log"):
            if (workdir / log).exists():
                shutil.copyfile(workdir / log, Path(target) / f"{name}-{log}")
