"""The pinned inputs of the enclave image (`imagebuild/inputs.lock.json`), parsed into frozen data.

Every downloadable input is named by exact version and SHA-256; nothing else is fetched.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imagebuild.errors import LockFileError

LOCK_PATH = Path(__file__).with_name("inputs.lock.json")
MAX_LOCK_BYTES = 256 * 1024
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
SUPPORTED_FORMAT = 1


@dataclass(frozen=True)
class DebianPackage:
    package: str
    version: str
    archive: str  # a key of Lock.debian_archives
    filename: str  # the pool path apt uses, relative to the archive root
    sha256: str
    size: int

    @property
    def basename(self) -> str:
        return self.filename.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Kernel:
    """How the enclave kernel is built (imagebuild/kernel_build.py)."""

    deb: DebianPackage  # the Debian source package (linux-source-6.12)
    source_tarball: str  # the tarball inside that .deb, e.g. usr/src/linux-source-6.12.tar.xz
    release: str  # `uname -r` of the built kernel; the build checks it
    config_fragment: str  # file name next to the lock, applied over `make tinyconfig`
    build_user: str  # KBUILD_BUILD_USER
    build_host: str  # KBUILD_BUILD_HOST
    toolchain: dict[str, str]  # Debian package -> exact version, checked with dpkg before building
    why: str


@dataclass(frozen=True)
class Wheel:
    name: str
    version: str
    filename: str
    sha256: str


@dataclass(frozen=True)
class Lock:
    source_date_epoch: int
    image_name: str
    cmdline: str
    debian_archives: dict[str, tuple[str, ...]]
    kernel: Kernel
    runtime_debs: tuple[DebianPackage, ...]
    wheels: tuple[Wheel, ...]
    excluded_requirements: dict[str, str]
    # Declared dependencies of locked wheels that nothing in the image imports (name -> why); the image
    # and requirements.lock (requirements-excludes.txt) leave them out.
    unused_dependencies: dict[str, str]
    sha256: str  # of the lock file's bytes, recorded in the EIF metadata


def _require(mapping: dict[str, Any], key: str, kind: type) -> Any:
    value = mapping.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise LockFileError(f"lock field {key!r} must be a {kind.__name__}")
    return value


def _sha256(mapping: dict[str, Any]) -> str:
    value = _require(mapping, "sha256", str)
    if not SHA256_PATTERN.match(value):
        raise LockFileError(f"bad sha256 {value!r}")
    return value


def _deb(raw: dict[str, Any], archives: dict[str, tuple[str, ...]]) -> DebianPackage:
    deb = DebianPackage(
        package=_require(raw, "package", str), version=_require(raw, "version", str),
        archive=_require(raw, "archive", str), filename=_require(raw, "filename", str),
        sha256=_sha256(raw), size=_require(raw, "size", int),
    )
    if deb.archive not in archives:
        raise LockFileError(f"{deb.package}: unknown archive {deb.archive!r}")
    if not deb.filename.startswith("pool/") or ".." in deb.filename or not deb.filename.endswith(".deb"):
        raise LockFileError(f"{deb.package}: filename {deb.filename!r} is not a pool path to a .deb")
    return deb


def _kernel(raw: dict[str, Any], archives: dict[str, tuple[str, ...]]) -> Kernel:
    toolchain = _require(raw, "toolchain", dict)
    if not toolchain or not all(isinstance(name, str) and isinstance(version, str) for name, version in toolchain.items()):
        raise LockFileError("kernel toolchain must map Debian package names to versions")
    kernel = Kernel(
        deb=_deb(_require(raw, "deb", dict), archives),
        source_tarball=_require(raw, "source_tarball", str),
        release=_require(raw, "release", str),
        config_fragment=_require(raw, "config_fragment", str),
        build_user=_require(raw, "build_user", str),
        build_host=_require(raw, "build_host", str),
        toolchain=dict(sorted(toolchain.items())),
        why=_require(raw, "why", str),
    )
    if "/" in kernel.config_fragment or kernel.config_fragment.startswith("."):
        raise LockFileError(f"kernel config_fragment {kernel.config_fragment!r} must be a file name next to the lock")
    if not re.fullmatch(r"[a-z0-9.+-]+", kernel.release):
        raise LockFileError(f"kernel release {kernel.release!r} is not a plain version string")
    return kernel


def _reasons(data: dict[str, Any], key: str) -> dict[str, str]:
    """An optional ``{name: why}`` table."""
    value = data.get(key, {})
    if not isinstance(value, dict) or not all(isinstance(name, str) and isinstance(why, str) and why for name, why in value.items()):
        raise LockFileError(f"lock field {key!r} must map package names to a reason")
    return dict(value)


def parse_lock(raw: bytes) -> Lock:
    if len(raw) > MAX_LOCK_BYTES:
        raise LockFileError(f"lock file larger than {MAX_LOCK_BYTES} bytes")
    try:
        data = json.loads(raw)
    except ValueError as error:
        raise LockFileError(f"lock file is not JSON: {error}") from error
    if not isinstance(data, dict) or data.get("format") != SUPPORTED_FORMAT:
        raise LockFileError(f"lock file format must be {SUPPORTED_FORMAT}")
    archives = {name: tuple(urls) for name, urls in _require(data, "debian_archives", dict).items()}
    kernel_raw = _require(data, "kernel", dict)
    wheels = tuple(
        Wheel(_require(item, "name", str), _require(item, "version", str), _require(item, "filename", str), _sha256(item))
        for item in _require(data, "wheels", list)
    )
    for wheel in wheels:
        if "/" in wheel.filename or not wheel.filename.endswith(".whl"):
            raise LockFileError(f"bad wheel filename {wheel.filename!r}")
    lock = Lock(
        source_date_epoch=_require(data, "source_date_epoch", int),
        image_name=_require(data, "image_name", str),
        cmdline=_require(data, "cmdline", str),
        debian_archives=archives,
        kernel=_kernel(kernel_raw, archives),
        runtime_debs=tuple(_deb(item, archives) for item in _require(data, "runtime_debs", list)),
        wheels=wheels,
        excluded_requirements=dict(_require(data, "excluded_requirements", dict)),
        unused_dependencies=_reasons(data, "unused_dependencies"),
        sha256=hashlib.sha256(raw).hexdigest(),
    )
    if not 0 < lock.source_date_epoch < 2**32:
        raise LockFileError("source_date_epoch out of range")
    return lock


def load_lock(path: Path = LOCK_PATH) -> Lock:
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise LockFileError(f"cannot read {path.name}: {error.strerror}") from error
    return parse_lock(raw)
