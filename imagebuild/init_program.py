#!/usr/bin/python3.11 -I
"""The enclave's /init (PID 1). This file is copied verbatim into the bootstrap ramdisk.

The kernel starts it on the interpreter of the application ramdisk (both are unpacked first), with an
almost empty environment, before anything is mounted and possibly before the random pool is ready. It
depends on neither: the bootstrap ramdisk carries static /dev/console, /dev/null and /dev/urandom
(CPython seeds its string hashing from /dev/urandom at start-up, which never blocks), and then

    1. mounts /proc, /sys, devtmpfs on /dev (the kernel's DEVTMPFS_MOUNT does not apply to an
       initramfs), tmpfs on /dev/shm and /tmp
    2. brings up the loopback interface
    3. tells nitro-cli the enclave booted: connect to the parent (vsock CID 3) on port 9000, send the
       byte 0xB7 and read it back. `nitro-cli run-enclave` listens there from before the start and
       terminates an enclave that has not done this within 90 s per 6 GiB of EIF (error E36;
       aws-nitro-enclaves-cli: ENCLAVE_READY_VSOCK_PORT, eif_loader's enclave_ready). Bounded by
       HEARTBEAT_TIMEOUT_SECONDS; without a vsock path (QEMU has no vsock device here) it says so and
       goes on, and a failed heartbeat is logged, not fatal: nitro-cli ends such an enclave itself,
       and a debug console keeps showing why
    4. waits until the kernel's random pool is initialised (the NSM hardware RNG feeds it on Nitro), so
       nothing in the runtime ever reads randomness before there is some
    5. replaces itself with `python3.11 -m enclave` and a fixed environment

Only the standard library is used; every failure is printed before PID 1 exits and the kernel panics.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import socket
import struct
import sys
import time
from collections.abc import Callable, Sequence
from typing import NoReturn

APPLICATION_DIRECTORY = "/opt/memwal/app"
SITE_PACKAGES = "/opt/memwal/site-packages"
INTERPRETER = "/usr/bin/python3.11"
RUNTIME_ARGUMENTS = (INTERPRETER, "-m", "enclave")
MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x2, 0x4, 0x8
# (source, target, type, flags, options) in mount order.
MOUNTS = (
    ("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, ""),
    ("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, ""),
    ("devtmpfs", "/dev", "devtmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755"),
    ("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777"),
    ("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"),
)
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
RUNTIME_ENVIRONMENT = {
    "PATH": "/usr/bin:/bin",
    "HOME": "/root",
    "LANG": "C.UTF-8",
    "TZ": "UTC",
    "PYTHONHASHSEED": "0",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUNBUFFERED": "1",
    "PYTHONPATH": f"{APPLICATION_DIRECTORY}:{SITE_PACKAGES}",
}
# nitro-cli's boot heartbeat (aws-nitro-enclaves-cli: VMADDR_CID_PARENT, ENCLAVE_READY_VSOCK_PORT, HEART_BEAT).
PARENT_CID = 3
HEARTBEAT_PORT = 9000
HEARTBEAT_BYTE = b"\xb7"
HEARTBEAT_TIMEOUT_SECONDS = 10.0  # connect, send and echo together; nitro-cli itself waits 90 s
# connect() errors that mean there is no vsock path to a parent at all (no AF_VSOCK, no transport or device).
NO_VSOCK_ERRNOS = frozenset({errno.EAFNOSUPPORT, errno.ENODEV, errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL})
# Console lines the boot test looks for (tests/boot).
STARTED_MESSAGE = "init: PID 1 started"
RANDOM_WAIT_MESSAGE = "init: waiting for the kernel random pool (fed by the NSM hardware RNG)"
HEARTBEAT_ANSWERED_MESSAGE = f"init: nitro-cli boot heartbeat answered (vsock cid {PARENT_CID}, port {HEARTBEAT_PORT})"
HEARTBEAT_ABSENT_MESSAGE = (
    f"init: no vsock path to the parent (cid {PARENT_CID}): nitro-cli boot heartbeat skipped, not a Nitro enclave"
)
HEARTBEAT_FAILED_MESSAGE = f"init: nitro-cli boot heartbeat failed (vsock cid {PARENT_CID}, port {HEARTBEAT_PORT})"
EXEC_MESSAGE_PREFIX = "init: starting the enclave runtime:"

Connector = Callable[[float], socket.socket]


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def exec_message(arguments: Sequence[str]) -> str:
    return f"{EXEC_MESSAGE_PREFIX} {' '.join([os.path.basename(arguments[0]), *arguments[1:]])}"


EXEC_MESSAGE = exec_message(RUNTIME_ARGUMENTS)


def mount_all(mount: Callable[..., int]) -> None:
    for source, target, kind, flags, options in MOUNTS:
        os.makedirs(target, exist_ok=True)
        if mount(source.encode(), target.encode(), kind.encode(), flags, options.encode() or None) != 0:
            code = ctypes.get_errno()
            if code != errno.EBUSY:
                raise OSError(code, f"mount {kind} on {target}: {os.strerror(code)}")


def loopback_up() -> None:
    # The kernel assigns 127.0.0.1/8 to `lo` itself once the interface is up.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as control:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(control, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(control, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def wait_for_random_pool(
    getrandom: Callable[[int, int], bytes] = os.getrandom, clock: Callable[[], float] = time.monotonic
) -> float | None:
    """Return None if the pool was ready, else the seconds waited. A blocking getrandom(2) makes the
    kernel gather jitter entropy itself, so this ends even on a machine without any hardware RNG."""
    try:
        getrandom(1, os.GRND_NONBLOCK)
        return None
    except BlockingIOError:
        pass
    say(RANDOM_WAIT_MESSAGE)
    started = clock()
    getrandom(1, 0)
    return clock() - started


def connect_to_parent(timeout: float) -> socket.socket:
    """A vsock stream to nitro-cli's heartbeat listener on the parent."""
    sock = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect((PARENT_CID, HEARTBEAT_PORT))
    except BaseException:
        sock.close()
        raise
    return sock


def send_heartbeat(
    connect: Connector = connect_to_parent, *, timeout: float = HEARTBEAT_TIMEOUT_SECONDS, clock: Callable[[], float] = time.monotonic
) -> str:
    """Step 3: "answered", "absent" (no vsock path) or "failed"; the console line says which and why."""
    deadline = clock() + timeout
    try:
        with connect(timeout) as stream:
            stream.settimeout(max(deadline - clock(), 0.001))
            stream.sendall(HEARTBEAT_BYTE)
            echo = stream.recv(1)
    except OSError as error:
        if error.errno in NO_VSOCK_ERRNOS:
            say(f"{HEARTBEAT_ABSENT_MESSAGE} ({os.strerror(error.errno)})")
            return "absent"
        reason = f"no answer within {timeout:g} s" if isinstance(error, TimeoutError) else (error.strerror or str(error))
        say(f"{HEARTBEAT_FAILED_MESSAGE}: {reason}; continuing (nitro-cli terminates an enclave it did not hear from)")
        return "failed"
    if echo != HEARTBEAT_BYTE:
        say(f"{HEARTBEAT_FAILED_MESSAGE}: the parent answered {echo!r}, not {HEARTBEAT_BYTE!r}; continuing")
        return "failed"
    say(HEARTBEAT_ANSWERED_MESSAGE)
    return "answered"


def prepare_machine() -> None:
    """Steps 1-4: everything before the runtime starts (the QEMU test boot's init runs these too)."""
    mount_all(ctypes.CDLL(None, use_errno=True).mount)
    loopback_up()
    send_heartbeat()
    waited = wait_for_random_pool()
    if waited is not None:
        say(f"init: random pool ready after {waited:.1f} s")


def start_runtime(arguments: Sequence[str] = RUNTIME_ARGUMENTS) -> NoReturn:
    """Step 5: PID 1 becomes the runtime."""
    os.chdir(APPLICATION_DIRECTORY)
    say(exec_message(arguments))
    os.execve(arguments[0], list(arguments), RUNTIME_ENVIRONMENT)  # noqa: S606


def main() -> None:
    say(STARTED_MESSAGE)
    prepare_machine()
    start_runtime()


if __name__ == "__main__":
    try:
        main()
    except BaseException as error:  # PID 1 must say why before the kernel panics and the enclave stops
        say(f"init: {type(error).__name__}: {error}")
        raise
