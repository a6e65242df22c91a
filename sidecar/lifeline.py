"""The sidecar (the key holder) never outlives the relayer that started it.

At start the sidecar asks the kernel to SIGKILL it when its parent dies (``prctl(PR_SET_PDEATHSIG)``, Linux).
The parent may already have died before that call: then the sidecar has been re-parented, so it compares
``getppid()`` with the pid the relayer passed in SIDECAR_PARENT_PID and exits at once if they differ. A
watchdog task repeats that comparison every second, for kernels where the prctl call is unavailable.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
import sys

logger = logging.getLogger("memwal.sidecar.lifeline")

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
PARENT_CHECK_SECONDS = 1.0
ORPHANED_EXIT_STATUS = 70  # EX_SOFTWARE: the parent is gone; nothing to serve


def expected_parent(environment: dict[str, str]) -> int | None:
    text = environment.get("SIDECAR_PARENT_PID", "")
    return int(text) if text.isascii() and text.isdigit() else None


def die_with_parent(parent_pid: int | None) -> bool:
    """Arrange SIGKILL on the parent's death; exit now if the parent is already gone. True if prctl took."""
    armed = False
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        armed = libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
        if not armed:
            logger.warning("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(ORPHANED_EXIT_STATUS)  # the parent died before the prctl call: we would be an orphan
    return armed


async def watch_parent(parent_pid: int) -> None:
    """Exit the process as soon as the parent is no longer ``parent_pid`` (the prctl fallback)."""
    while True:
        if os.getppid() != parent_pid:
            logger.error("the relayer that started this sidecar is gone; exiting")
            os._exit(ORPHANED_EXIT_STATUS)
        await asyncio.sleep(PARENT_CHECK_SECONDS)
