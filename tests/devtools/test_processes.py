from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from devtools.processes import ChildProcess, StartError, child_environment, supervise, watch

# A child that starts a grandchild in its own process group (as the relayer starts its sidecar), prints its pid
# and ignores SIGTERM when asked to, so only the group kill can end it.
PARENT = """
import signal, subprocess, sys, time
if "stubborn" in sys.argv:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
print(grandchild.pid, flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/stat").read_text().split()[2] if Path(f"/proc/{pid}/stat").exists() else "X"
    return status not in ("Z", "X")


async def _grandchild(log: Path, child: ChildProcess) -> int:
    await child.wait_until(lambda: log.exists() and log.read_text().strip() != "", "no pid printed", timeout=30)
    return int(log.read_text().split()[0])


class TestChildProcess:
    async def test_stop_ends_the_child_and_what_it_started(self, tmp_path: Path) -> None:
        log = tmp_path / "child.log"
        child = ChildProcess("parent", ["-c", PARENT], child_environment(), log)
        await child.start()
        grandchild = await _grandchild(log, child)
        assert child.alive and _alive(grandchild)
        await child.stop()
        assert not child.alive
        await asyncio.sleep(0.2)
        assert not _alive(grandchild)
        await child.stop()  # a second stop is harmless

    async def test_kill_ends_a_child_that_ignores_sigterm(self, tmp_path: Path) -> None:
        log = tmp_path / "child.log"
        child = ChildProcess("stubborn", ["-c", PARENT, "stubborn"], child_environment(), log)
        await child.start()
        await _grandchild(log, child)
        await child.stop(kill=True)
        assert child.process is not None and child.process.returncode == -signal.SIGKILL

    async def test_wait_until_fails_when_the_child_exits(self, tmp_path: Path) -> None:
        child = ChildProcess("short", ["-c", "raise SystemExit(3)"], child_environment(), tmp_path / "short.log")
        await child.start()
        with pytest.raises(StartError, match="never ready"):
            await child.wait_until(lambda: False, "never ready")

    def test_environment_drops_service_configuration(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("SUI_RPC_URL", "http://elsewhere")
        monkeypatch.setenv("KEEP_ME", "1")
        environment = child_environment({"SUI_RPC_URL": "http://chosen"})
        assert environment["SUI_RPC_URL"] == "http://chosen" and environment["KEEP_ME"] == "1"
        assert environment["PYTHONUNBUFFERED"] == "1"


class TestWatch:
    async def test_returns_the_children_that_exited(self, tmp_path: Path) -> None:
        short = ChildProcess("short", ["-c", "pass"], child_environment(), tmp_path / "short.log")
        long = ChildProcess("long", ["-c", "import time; time.sleep(600)"], child_environment(), tmp_path / "long.log")
        for child in (short, long):
            await child.start()
        try:
            assert await asyncio.wait_for(watch([short, long], asyncio.Event()), 30) == ["short"]
        finally:
            await long.stop()

    async def test_returns_nothing_when_stopped(self, tmp_path: Path) -> None:
        long = ChildProcess("long", ["-c", "import time; time.sleep(600)"], child_environment(), tmp_path / "long.log")
        await long.start()
        stop = asyncio.Event()
        stop.set()
        try:
            assert await watch([long], stop) == []
        finally:
            await long.stop()


class TestSupervise:
    async def test_a_child_exiting_is_a_failure_that_names_it(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        short = ChildProcess("short", ["-c", "pass"], child_environment(), tmp_path / "short.log")
        await short.start()
        assert await asyncio.wait_for(supervise([short], asyncio.Event(), tmp_path), 30) == 1
        assert f"short exited; stopping (logs in {tmp_path})" in capsys.readouterr().err

    async def test_a_requested_stop_is_a_success(self, tmp_path: Path) -> None:
        stop = asyncio.Event()
        stop.set()
        assert await supervise([], stop, tmp_path) == 0
