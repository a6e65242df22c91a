import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from imagebuild import eif, pcr
from imagebuild.build import metadata_json
from imagebuild.lockfile import load_lock

REPOSITORY = Path(__file__).resolve().parents[2]


class TestMetadata:
    def test_fixed_content_from_inputs(self):
        lock = load_lock()
        first = metadata_json(lock, [b"a", b"b"])
        assert first == metadata_json(lock, [b"a", b"b"])
        document = json.loads(first)
        assert document["BuildMetadata"]["BuildTime"] == "2025-01-01T00:00:00Z"
        assert document["CustomMetadata"]["InputsLockSha256"] == lock.sha256
        assert metadata_json(lock, [b"a", b"c"]) != first


def build_in(workdir: Path, *, umask: int, timezone: str, locale: str) -> Path:
    """Run the CLI from an unrelated directory with a different umask/TZ/locale; share the
    download cache (it is re-verified by hash on every use)."""
    out = workdir / "out"
    environment = {**os.environ, "TZ": timezone, "LC_ALL": locale, "PYTHONPATH": str(REPOSITORY)}
    subprocess.run(
        [sys.executable, "-m", "imagebuild", "build", "--out", str(out), "--cache", str(REPOSITORY / "build" / "cache")],
        cwd=workdir, env=environment, check=True, preexec_fn=lambda: os.umask(umask), capture_output=True,
    )
    return out


@pytest.mark.image
@pytest.mark.timeout(3600)
class TestFullBuildIsReproducible:
    def test_two_builds_are_identical(self, tmp_path):
        (tmp_path / "one").mkdir()
        (tmp_path / "two").mkdir()
        first = build_in(tmp_path / "one", umask=0o022, timezone="UTC", locale="C")
        second = build_in(tmp_path / "two", umask=0o077, timezone="Asia/Kathmandu", locale="C.UTF-8")
        first_eif, second_eif = (first / "enclave.eif").read_bytes(), (second / "enclave.eif").read_bytes()
        assert hashlib.sha256(first_eif).digest() == hashlib.sha256(second_eif).digest()
        assert (first / "pcrs.json").read_text() == (second / "pcrs.json").read_text()
        measured = pcr.measure(eif.parse(first_eif)).as_json_dict()
        assert json.loads((first / "pcrs.json").read_text()) == measured
        assert len(eif.parse(first_eif).ramdisks) == 2
