"""What this process's TCP sockets look like from the kernel: addresses, listening or not, Nagle on or off.

Tests use it to check a property of the sockets code creates that no exchange of bytes would show without
a clock: ``TCP_NODELAY`` on every connected socket of a proxy (with Nagle on, a second small write waits
for the peer's delayed ACK, 40 ms on Linux). Socket options belong to the socket, not the descriptor, so a
duplicate of each descriptor reads them.
"""

from __future__ import annotations

import os
import socket
import stat
from dataclasses import dataclass

_PROC_FDS = "/proc/self/fd"

Address = tuple[str, int]


@dataclass(frozen=True)
class TcpSocketState:
    local: Address
    peer: Address | None  # None: listening or not connected
    listening: bool
    no_delay: bool


def tcp_sockets() -> list[TcpSocketState]:
    """Every IPv4/IPv6 stream socket this process holds open."""
    states = []
    for name in os.listdir(_PROC_FDS):
        descriptor = int(name)
        try:
            if not stat.S_ISSOCK(os.fstat(descriptor).st_mode):
                continue
            duplicate = socket.socket(fileno=os.dup(descriptor))  # family, type and protocol read from the kernel
        except OSError:  # closed since the listing (it was the listing's own descriptor, or another task's)
            continue
        with duplicate:
            if duplicate.family not in (socket.AF_INET, socket.AF_INET6) or duplicate.type != socket.SOCK_STREAM:
                continue
            try:
                peer: Address | None = duplicate.getpeername()[:2]
            except OSError:
                peer = None
            states.append(
                TcpSocketState(
                    local=duplicate.getsockname()[:2],
                    peer=peer,
                    listening=bool(duplicate.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)),
                    no_delay=bool(duplicate.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)),
                )
            )
    return states


def accepted_on(port: int) -> list[TcpSocketState]:
    """Connected sockets whose local port is ``port``: what a listener on ``port`` accepted."""
    return [state for state in tcp_sockets() if not state.listening and state.peer is not None and state.local[1] == port]


def dialled_to(port: int) -> list[TcpSocketState]:
    """Connected sockets whose peer port is ``port``: connections this process opened to it."""
    return [state for state in tcp_sockets() if state.peer is not None and state.peer[1] == port]
