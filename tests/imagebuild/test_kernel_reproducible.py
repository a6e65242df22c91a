"""A second cold kernel build, elsewhere and under another umask, time zone and locale, gives the same bzImage."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
SHARED_CACHE = REPOSITORY / "build" / "cache"
BUILD = """
import sys
from pathlib import Path
from imagebuild.kernel_build import build_kernel
from imagebuild.lockfile import load_lock
from imagebuild.sources import InputCache
lock = load_lock()
built = build_kernel(lock, InputCache(Path(sys.argv[1])), cache=Path(sys.argv[2]), progress=lambda line: print(line, flush=True))
Path(sys.argv[3]).write_bytes(built.bzimage)
"""


def build(kernel_cache: Path, out: Path, *, cwd: Path, umask: int, timezone: str, locale: str) -> bytes:
    environment = {**os.environ, "TZ": timezone, "LC_ALL": locale, "PYTHONPATH": str(REPOSITORY)}
    result = subprocess.run(
        [sys.executable, "-c", BUILD, str(SHARED_CACHE), str(kernel_cache), str(out)],
        cwd=cwd, env=environment, preexec_fn=lambda: os.umask(umask), capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out.read_bytes()


@pytest.mark.image
@pytest.mark.timeout(3600)
def test_a_second_cold_build_gives_the_same_bzimage(tmp_path):
    # The first comes from the shared cache (built by `make image`, or now if that is cold).
    first = build(SHARED_CACHE, tmp_path / "first", cwd=REPOSITORY, umask=0o022, timezone="UTC", locale="C")
    (tmp_path / "elsewhere").mkdir()
    second = build(
        tmp_path / "fresh-cache", tmp_path / "second", cwd=tmp_path / "elsewhere", umask=0o077, timezone="Asia/Tokyo", locale="C.UTF-8"
    )
    assert hashlib.sha256(second).hexdigest() == hashlib.sha256(first).hexdigest()
