"""Install wheels without pip: unpack each archive's files into one site-packages tree.

The enclave needs no entry-point scripts, headers or byte code, so only purelib/platlib files are
kept, `__pycache__` is dropped, and the wheels' own RECORD files are left as published.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass

from imagebuild.cpio import CpioEntry, normalize_path
from imagebuild.errors import ArchiveError, LockFileError
from imagebuild.lockfile import Lock

MAX_WHEEL_UNPACKED_BYTES = 512 * 1024**2
MAX_WHEEL_MEMBERS = 50_000
MAX_REQUIREMENTS_BYTES = 1024**2
_REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)((?:\s*\\\n\s+--hash=sha256:[0-9a-f]{64})+)", re.M)
_DATA_DIRECTORY = re.compile(r"^[^/]+\.data/(purelib|platlib|scripts|headers|data)/(.*)$")


def canonical_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Requirement:
    name: str
    version: str
    hashes: frozenset[str]


def parse_requirements_lock(text: str) -> dict[str, Requirement]:
    """`name==version --hash=sha256:…` blocks of a hash-pinned requirements file, by canonical name."""
    if len(text) > MAX_REQUIREMENTS_BYTES:
        raise LockFileError("requirements lock too large")
    result = {}
    for match in _REQUIREMENT.finditer(text):
        name = canonical_name(match.group(1))
        result[name] = Requirement(name, match.group(2), frozenset(re.findall(r"[0-9a-f]{64}", match.group(3))))
    if not result:
        raise LockFileError("no hash-pinned requirement found")
    return result


def check_wheels_match_requirements(lock: Lock, requirements: dict[str, Requirement]) -> None:
    """Every wheel is a pinned requirement with an allowed hash, and every requirement not
    explicitly excluded has a wheel: the image and `requirements.lock` cannot drift apart."""
    excluded = {canonical_name(name) for name in lock.excluded_requirements}
    wheel_names = set()
    for wheel in lock.wheels:
        name = canonical_name(wheel.name)
        wheel_names.add(name)
        requirement = requirements.get(name)
        if requirement is None:
            raise LockFileError(f"wheel {wheel.filename} is not in requirements.lock")
        if requirement.version != wheel.version or wheel.sha256 not in requirement.hashes:
            raise LockFileError(f"wheel {wheel.filename} does not match {name}=={requirement.version} in requirements.lock")
        if name in excluded:
            raise LockFileError(f"{name} is both excluded and locked as a wheel")
    missing = sorted(set(requirements) - wheel_names - excluded)
    if missing:
        raise LockFileError(f"requirements without a locked wheel or an exclusion: {', '.join(missing)}")


def wheel_entries(wheel: bytes, *, prefix: str) -> list[CpioEntry]:
    entries = []
    total = 0
    with zipfile.ZipFile(io.BytesIO(wheel)) as archive:
        infos = archive.infolist()
        if len(infos) > MAX_WHEEL_MEMBERS:
            raise ArchiveError(f"wheel has more than {MAX_WHEEL_MEMBERS} members")
        for info in infos:
            if info.is_dir():
                continue
            name = info.filename
            data_match = _DATA_DIRECTORY.match(name)
            if data_match:
                if data_match.group(1) not in ("purelib", "platlib"):
                    continue
                name = data_match.group(2)
            if "__pycache__/" in name or name.endswith((".pyc", ".pyo")):
                continue
            total += info.file_size
            if total > MAX_WHEEL_UNPACKED_BYTES:
                raise ArchiveError(f"wheel unpacks to more than {MAX_WHEEL_UNPACKED_BYTES} bytes")
            executable = bool((info.external_attr >> 16) & 0o111)
            entries.append(CpioEntry.file(f"{prefix}/{normalize_path(name)}", archive.read(info), executable=executable))
    return entries
