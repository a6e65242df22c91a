#!/usr/bin/python3.11 -I
"""The enclave's /init (PID 1). This file is copied verbatim into the bootstrap ramdisk.

The kernel starts it on the interpreter of the application ramdisk (both are unpacked first), with an
almost empty environment, before anything is mounted and possibly before the random pool is ready. It
depends on neither: the bootstrap ramdisk carries static /dev/console, /dev/null and /dev/urandom
(CPython seeds its string hashing from /dev/urandom at start-up, which never blocks), and then

    1. mounts /proc, /sys, devtmpfs on /dev (the kernel's DEVTMPFS_MOUNT does not apply to an
       initramfs), tmpfs on /dev/shm and /tmp
    2. brings up the loopback interface
    3. waits until the kernel's random pool is initialised (the NSM hardware RNG feeds it on Nitro), so
       nothing in the runtime ever reads randomness before there is some
    4. replaces itself with `python3.11 -m enclave` and a fixed environment

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
from collections.abc import Callable

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
# Console lines the boot test looks for (tests/boot).
STARTED_MESSAGE = "init: PID 1 started"
RANDOM_WAIT_MESSAGE = "init: waiting for the kernel random pool (fed by the NSM hardware RNG)"
EXEC_MESSAGE = "init: starting the enclave runtime: python3.11 -m enclave"


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


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


def main() -> None:
    say(STARTED_MESSAGE)
    libc = ctypes.CDLL(None, use_errno=True)
    mount_all(libc.mount)
    loopback_up()
    waited = wait_for_random_pool()
    if waited is not None:
        say(f"init: random pool ready after {waited:.1f} s")
    os.chdir(APPLICATION_DIRECTORY)
    say(EXEC_MESSAGE)
    os.execve(INTERPRETER, list(RUNTIME_ARGUMENTS), RUNTIME_ENVIRONMENT)  # noqa: S606 -- PID 1 becomes the runtime


if __name__ == "__main__":
    try:
        main()
    except BaseException as error:  # PID 1 must say why before the kernel panics and the enclave stops
        say(f"init: {type(error).__name__}: {error}")
        raise
