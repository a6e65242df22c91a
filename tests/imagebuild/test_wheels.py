import dataclasses
import io
import zipfile
from pathlib import Path

import pytest

from imagebuild.errors import ArchiveError, LockFileError
from imagebuild.lockfile import load_lock
from imagebuild.wheels import check_wheels_match_requirements, parse_requirements_lock, wheel_entries

REQUIREMENTS = Path(__file__).resolve().parents[2] / "requirements.lock"


def make_wheel(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


class TestWheelEntries:
    def test_layout(self):
        wheel = make_wheel({
            "pkg/__init__.py": b"x",
            "pkg/__pycache__/mod.cpython-311.pyc": b"drop",
            "pkg-1.0.data/purelib/extra.py": b"y",
            "pkg-1.0.data/scripts/tool": b"drop",
            "pkg-1.0.dist-info/METADATA": b"m",
        })
        paths = {entry.path: entry.data for entry in wheel_entries(wheel, prefix="site")}
        assert paths == {"site/pkg/__init__.py": b"x", "site/extra.py": b"y", "site/pkg-1.0.dist-info/METADATA": b"m"}

    def test_path_escape_rejected(self):
        with pytest.raises(ArchiveError, match="invalid archive path"):
            wheel_entries(make_wheel({"../evil.py": b""}), prefix="site")


class TestRequirementsConsistency:
    def test_committed_lock_matches_requirements(self):
        check_wheels_match_requirements(load_lock(), parse_requirements_lock(REQUIREMENTS.read_text()))

    def test_wrong_hash_rejected(self):
        lock = load_lock()
        wheel = dataclasses.replace(lock.wheels[0], sha256="0" * 64)
        broken = dataclasses.replace(lock, wheels=(wheel, *lock.wheels[1:]))
        with pytest.raises(LockFileError, match="does not match"):
            check_wheels_match_requirements(broken, parse_requirements_lock(REQUIREMENTS.read_text()))

    def test_missing_wheel_rejected(self):
        lock = load_lock()
        broken = dataclasses.replace(lock, wheels=lock.wheels[1:])
        with pytest.raises(LockFileError, match="requirements without a locked wheel"):
            check_wheels_match_requirements(broken, parse_requirements_lock(REQUIREMENTS.read_text()))

    def test_empty_requirements_rejected(self):
        with pytest.raises(LockFileError, match="no hash-pinned requirement"):
            parse_requirements_lock("starlette==1.0\n")
