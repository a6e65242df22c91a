"""Download the pinned inputs into a cache and hand them out only after checking their SHA-256.

Debian packages come straight from the archive's pool (the same URL apt would use); wheels come
through pip, restricted to the one file whose hash the lock names. Nothing is trusted because of
where it came from: a file is used only if its SHA-256 matches, on every use.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from imagebuild.errors import FetchError, HashMismatch
from imagebuild.lockfile import DebianPackage, Lock, Wheel

DOWNLOAD_TIMEOUT_SECONDS = 120
MAX_DOWNLOAD_BYTES = 512 * 1024**2
# The image runs CPython 3.11 on glibc 2.36 (bookworm): every manylinux tag up to 2.36 is usable.
MANYLINUX_PLATFORMS = (
    "manylinux_2_36_x86_64", "manylinux_2_34_x86_64", "manylinux_2_31_x86_64", "manylinux_2_28_x86_64",
    "manylinux_2_27_x86_64", "manylinux_2_24_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
    "manylinux_2_12_x86_64", "manylinux2010_x86_64", "manylinux_2_5_x86_64", "manylinux1_x86_64",
)

Progress = Callable[[str], None]


def _verified(path: Path, expected: str) -> bytes:
    data = path.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise HashMismatch(f"{path.name}: sha256 {actual} but the lock pins {expected}")
    return data


def _store(cache_file: Path, data: bytes) -> None:
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    temporary = cache_file.with_name(cache_file.name + ".partial")
    temporary.write_bytes(data)
    os.replace(temporary, cache_file)


def _download(url: str) -> bytes:
    if not url.startswith(("http://", "https://")):  # every input is checked by hash, but never read local files
        raise FetchError(f"{url} is not an http(s) URL")
    request = urllib.request.Request(url, headers={"User-Agent": "memwal-enclave-imagebuild"})  # noqa: S310 -- scheme checked above
    with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response:  # noqa: S310
        data = response.read(MAX_DOWNLOAD_BYTES + 1)
    if len(data) > MAX_DOWNLOAD_BYTES:
        raise FetchError(f"{url} is larger than {MAX_DOWNLOAD_BYTES} bytes")
    return data


class InputCache:
    """`root/debs/<file>.deb` and `root/wheels/<file>.whl`, each checked against the lock on read."""

    def __init__(self, root: Path, *, progress: Progress = lambda line: None) -> None:
        self.root = root
        self.progress = progress

    def deb(self, lock: Lock, package: DebianPackage) -> bytes:
        cache_file = self.root / "debs" / package.basename
        if not cache_file.exists():
            self._fetch_deb(lock, package, cache_file)
        return _verified(cache_file, package.sha256)

    def _fetch_deb(self, lock: Lock, package: DebianPackage, cache_file: Path) -> None:
        failures = []
        for mirror in lock.debian_archives[package.archive]:
            url = f"{mirror.rstrip('/')}/{package.filename}"
            self.progress(f"  fetching {package.package} {package.version} ({package.size // 1024} KiB)")
            try:
                data = _download(url)
            except (urllib.error.URLError, OSError) as error:
                failures.append(f"{url}: {error}")
                continue
            if hashlib.sha256(data).hexdigest() != package.sha256:
                failures.append(f"{url}: wrong sha256")
                continue
            _store(cache_file, data)
            return
        raise FetchError(f"cannot fetch {package.package} {package.version}: " + "; ".join(failures))

    def wheels(self, wheels: tuple[Wheel, ...]) -> dict[str, bytes]:
        missing = [wheel for wheel in wheels if not (self.root / "wheels" / wheel.filename).exists()]
        if missing:
            self.progress(f"  fetching {len(missing)} wheels with pip")
            self._fetch_wheels(missing)
        return {wheel.filename: _verified(self.root / "wheels" / wheel.filename, wheel.sha256) for wheel in wheels}

    def _fetch_wheels(self, wheels: list[Wheel]) -> None:
        with tempfile.TemporaryDirectory(prefix="imagebuild-wheels-") as scratch:
            requirements = Path(scratch) / "requirements.txt"
            # One hash per requirement makes pip pick exactly the locked file.
            requirements.write_text("".join(f"{w.name}=={w.version} --hash=sha256:{w.sha256}\n" for w in wheels))
            command = [
                sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                "--require-hashes", "--only-binary=:all:", "--no-deps", "--python-version", "3.11",
                "--implementation", "cp", "--abi", "cp311", "--abi", "abi3", "--abi", "none",
                *[argument for platform in MANYLINUX_PLATFORMS for argument in ("--platform", platform)],
                "--dest", str(Path(scratch) / "out"), "--requirement", str(requirements),
            ]
            result = subprocess.run(command, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise FetchError(f"pip download failed: {result.stderr.strip()[-2000:]}")
            for wheel in wheels:
                downloaded = Path(scratch) / "out" / wheel.filename
                if not downloaded.exists():
                    raise FetchError(f"pip did not produce {wheel.filename}")
                _store(self.root / "wheels" / wheel.filename, _verified(downloaded, wheel.sha256))
