"""A network namespace with only ``lo``: the local stand-in for "vsock is the enclave's only channel".

A process started with :meth:`NetworkNamespace.command` has its own loopback and no other interface:
it cannot reach the host's loopback or any network. It still shares the filesystem, so the Unix
sockets the host proxy listens on are its only way out, as vsock is for a Nitro enclave.
Needs root (``ip netns add``); :func:`can_isolate` says whether this process can.

    namespace = NetworkNamespace.create(f"memwal-{os.getpid()}")
    try:
        subprocess.run(namespace.command(["python", "-c", "..."]))
    finally:
        namespace.delete()
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

IP_TIMEOUT_SECONDS = 10.0


class NamespaceError(RuntimeError):
    """An ``ip netns`` command failed; the message has its stderr."""


def can_isolate() -> bool:
    """Root with iproute2 installed."""
    return os.geteuid() == 0 and shutil.which("ip") is not None


def _ip(*arguments: str) -> str:
    try:
        result = subprocess.run(["ip", *arguments], capture_output=True, text=True, timeout=IP_TIMEOUT_SECONDS)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise NamespaceError(f"ip {' '.join(arguments)}: {error}") from error
    if result.returncode != 0:
        raise NamespaceError(f"ip {' '.join(arguments)}: {result.stderr.strip()}")
    return result.stdout


@dataclass(frozen=True)
class NetworkNamespace:
    name: str

    @classmethod
    def create(cls, name: str) -> NetworkNamespace:
        """``ip netns add NAME`` and bring its ``lo`` up; deleted again if that fails."""
        _ip("netns", "add", name)
        namespace = cls(name)
        try:
            _ip("-n", name, "link", "set", "lo", "up")
        except BaseException:
            namespace.delete()
            raise
        return namespace

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` run inside the namespace (``ip netns exec`` execs it: the pid is the command's)."""
        return ["ip", "netns", "exec", self.name, *argv]

    def interfaces(self) -> list[str]:
        return [line.split(":")[1].strip().split("@")[0] for line in _ip("-n", self.name, "-o", "link").splitlines()]

    def delete(self) -> None:
        """``ip netns delete``; a namespace that is already gone is not an error."""
        try:
            _ip("netns", "delete", self.name)
        except NamespaceError:
            if self.exists():
                raise

    def exists(self) -> bool:
        return self.name in {line.split()[0] for line in _ip("netns", "list").splitlines() if line.strip()}
