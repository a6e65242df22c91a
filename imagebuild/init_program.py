#!/usr/bin/python3.11 -I
"""The enclave's /init (PID 1). This file is copied verbatim into the first ramdisk.

It runs on the interpreter of the second ramdisk (the kernel unpacks both before starting /init),
uses only the standard library, and then replaces itself with the relayer runtime:
mount /proc, /sys, /dev and /tmp; load the kernel modules named in /etc/enclave-modules (virtio-mmio,
the Nitro Secure Module, vsock) with any `module.param=value` from the kernel command line; bring up
the loopback interface; exec `python3.11 -m enclave` with a fixed environment.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import socket
import struct
import sys

MODULE_LIST = "/etc/enclave-modules"
MODULE_DIRECTORY = "/lib/modules"
APPLICATION_DIRECTORY = "/opt/memwal/app"
SITE_PACKAGES = "/opt/memwal/site-packages"
INTERPRETER = "/usr/bin/python3.11"
SYS_FINIT_MODULE_X86_64 = 313
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
MOUNTS = (("proc", "/proc", "proc"), ("sysfs", "/sys", "sysfs"), ("devtmpfs", "/dev", "devtmpfs"), ("tmpfs", "/tmp", "tmpfs"))
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


def module_parameters(cmdline: str, module: str) -> str:
    """`module.key=value` words of the kernel command line, as finit_module wants them."""
    prefix = module.replace("-", "_") + "."
    words = [word for word in cmdline.split() if word.replace("-", "_").startswith(prefix) and "=" in word]
    return " ".join(word[len(prefix) :] for word in words)


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def mount_all(libc: ctypes.CDLL) -> None:
    for source, target, kind in MOUNTS:
        os.makedirs(target, exist_ok=True)
        if libc.mount(source.encode(), target.encode(), kind.encode(), 0, None) != 0:
            code = ctypes.get_errno()
            if code != errno.EBUSY:
                raise OSError(code, f"mount {kind} on {target}: {os.strerror(code)}")


def load_modules(libc: ctypes.CDLL, cmdline: str) -> None:
    with open(MODULE_LIST, encoding="ascii") as listing:
        names = [line.strip() for line in listing if line.strip()]
    for name in names:
        descriptor = os.open(f"{MODULE_DIRECTORY}/{name}.ko", os.O_RDONLY | os.O_CLOEXEC)
        try:
            parameters = module_parameters(cmdline, name).encode()
            if libc.syscall(SYS_FINIT_MODULE_X86_64, descriptor, parameters, 0) != 0:
                code = ctypes.get_errno()
                if code != errno.EEXIST:  # built in, or already loaded
                    raise OSError(code, f"finit_module {name}: {os.strerror(code)}")
        finally:
            os.close(descriptor)


def loopback_up() -> None:
    # The kernel assigns 127.0.0.1/8 and ::1 to `lo` itself once the interface is up.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as control:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(control, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(control, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def main() -> None:
    libc = _libc()
    mount_all(libc)
    with open("/proc/cmdline", encoding="ascii", errors="replace") as handle:
        cmdline = handle.read()
    load_modules(libc, cmdline)
    loopback_up()
    os.chdir(APPLICATION_DIRECTORY)
    os.execve(INTERPRETER, [INTERPRETER, "-m", "enclave"], RUNTIME_ENVIRONMENT)  # noqa: S606 -- PID 1 becomes the runtime


if __name__ == "__main__":
    try:
        main()
    except BaseException as error:  # PID 1 must say why before the kernel panics and the enclave stops
        print(f"init: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
        raise
