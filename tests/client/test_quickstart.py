"""The README quick start, as a user runs it: a fresh virtualenv outside the repository, ``pip install
./client`` (offline: wheels repacked from this venv), then the file `make run` writes, async and sync,
against the running appliance. Then `make run` again on the same data directory: the demo account, its
key and the test root are kept, so the saved quick start still runs.

Needs root for the appliance's network namespace, like tests/e2e/test_appliance.py.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.appliance import Appliance
from devtools.appliance_banner import README_VALUES, user_snippet
from devtools.processes import free_port

from .wheelhouse import build_wheelhouse, client_requirements

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART_TIMEOUT_SECONDS = 300


def test_the_readme_shows_the_quick_start_make_run_writes():
    readme = (ROOT / "README.md").read_text()
    assert "```python\n" + user_snippet(**README_VALUES) + "```" in readme
    assert "._" not in user_snippet(**README_VALUES)  # no private attribute in user code


def fresh_venv(directory: Path) -> Path:
    """``python -m venv`` + ``pip install ./client`` with no index; returns the venv's python."""
    wheels = directory / "wheels"
    build_wheelhouse(client_requirements(ROOT / "client" / "pyproject.toml"), wheels)
    subprocess.run([sys.executable, "-m", "venv", str(directory / "venv")], check=True, capture_output=True)
    python = directory / "venv" / "bin" / "python"
    installed = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-index", "--find-links", str(wheels), str(ROOT / "client")],
        capture_output=True, text=True, cwd=directory, timeout=QUICKSTART_TIMEOUT_SECONDS,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return python


def run_quickstart(python: Path, script: Path) -> str:
    environment = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), "LANG": "C.UTF-8"}
    finished = subprocess.run([str(python), str(script)], capture_output=True, text=True, cwd=script.parent.parent,
                              env=environment, timeout=QUICKSTART_TIMEOUT_SECONDS)  # fmt: skip
    assert finished.returncode == 0, finished.stdout + finished.stderr
    return finished.stdout


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.interop
@pytest.mark.database
@pytest.mark.asyncio(loop_scope="session")
async def test_a_fresh_venv_runs_the_quick_start_and_make_run_keeps_it_valid(tmp_path):
    python = await asyncio.to_thread(fresh_venv, tmp_path)
    located = subprocess.run([str(python), "-c", "import attestation, memwal_enclave; print(attestation.__file__)"],
                             capture_output=True, text=True, cwd=tmp_path, check=True)  # fmt: skip
    assert located.stdout.startswith(str(tmp_path / "venv"))  # the installed copy, not the repository's
    data, port = tmp_path / "appliance", free_port()
    async with Appliance(data, port=port, progress=lambda line: None) as first:
        script = first.layout.quickstart_path
        written = script.read_text()
        output = await asyncio.to_thread(run_quickstart, python, script)
        assert f"attested, configuration sha384 {first.configuration_digest.hex()}" in output
        assert output.count("I am allergic to peanuts") >= 2  # recalled async, then sync
        account, root = first.account.account_id, first.layout.test_root_path.read_bytes()
    async with Appliance(data, port=port, progress=lambda line: None) as second:
        assert second.account.account_id == account
        assert second.layout.test_root_path.read_bytes() == root
        assert script.read_text() == written  # the saved quick start is still the right one
        output = await asyncio.to_thread(run_quickstart, python, script)
        assert f"attested, configuration sha384 {second.configuration_digest.hex()}" in output
        assert "RememberResult(" in output  # the same account and key are accepted after the restart
        # The memory stored before the restart is still there and still decrypts (same key servers on chain).
        assert output.count("I am allergic to peanuts") >= 2, output
