"""sidecar.lifeline: the key holder never outlives the process that started it.

Real processes: a parent that starts a child which arms the lifeline, then the parent is SIGKILLed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sidecar.lifeline import ORPHANED_EXIT_STATUS

REPOSITORY = Path(__file__).resolve().parents[2]
CHILD = "import os, sys, time; from sidecar.lifeline import die_with_parent; die_with_parent({parent}); print(os.getpid(), flush=True); time.sleep(60)"
PARENT = (
    "import os, subprocess, sys, time; "
    "child = subprocess.Popen([sys.executable, '-c', {child!r}.format(parent=os.getpid())], stdout=sys.stdout); "
    "time.sleep(60)"
)


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


class TestLifeline:
    def test_a_child_whose_parent_is_not_the_expected_one_exits_at_once(self):
        # The parent died before the prctl call: the child was re-parented and must not serve.
        result = subprocess.run([sys.executable, "-c", CHILD.format(parent=1 if os.getpid() != 1 else 2)],
                                cwd=REPOSITORY, capture_output=True, timeout=30)
        assert result.returncode == ORPHANED_EXIT_STATUS and result.stdout == b""

    def test_the_child_dies_within_a_second_of_a_sigkilled_parent(self):
        parent = subprocess.Popen([sys.executable, "-c", PARENT.format(child=CHILD)], cwd=REPOSITORY,
                                  stdout=subprocess.PIPE, start_new_session=True)
        try:
            child = int(parent.stdout.readline())  # printed once the lifeline is armed
            assert running(child)
            parent.kill()
            parent.wait(10)
            killed = time.monotonic()
            while running(child):
                assert time.monotonic() - killed < 1.0, "the child outlived its parent"
                time.sleep(0.01)
        finally:
            if parent.poll() is None:
                parent.kill()
            parent.stdout.close()
            try:
                os.killpg(parent.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
