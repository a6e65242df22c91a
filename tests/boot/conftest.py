"""Fixtures of the boot tests: the production EIF, built once per session (or BOOT_TEST_EIF if set)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.boot.qemu import BootImage, keep_artifacts

REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def enclave_eif(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The EIF `make image` builds. A cold kernel build takes minutes; the kernel cache makes later ones fast."""
    given = os.environ.get("BOOT_TEST_EIF")
    if given:
        return Path(given)
    out = tmp_path_factory.mktemp("image")
    log = out / "build.log"
    started = time.monotonic()
    with open(log, "wb") as handle:
        result = subprocess.run(
            [sys.executable, "-m", "imagebuild", "build", "--out", str(out), "--cache", str(REPOSITORY / "build" / "cache")],
            cwd=REPOSITORY, stdout=handle, stderr=subprocess.STDOUT, check=False,
        )
    if result.returncode != 0:
        pytest.fail(f"the image build failed:\n{log.read_text()[-4000:]}")
    print(f"\nimage built in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return out / "enclave.eif"


@pytest.fixture(scope="session")
def enclave_image(enclave_eif: Path) -> BootImage:
    return BootImage.from_eif(enclave_eif)


@pytest.fixture
def workdir(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    yield tmp_path
    keep_artifacts(tmp_path, request.node.name)
