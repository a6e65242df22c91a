"""Assemble the two ramdisks from Debian files, wheels, the project's sources and /init.

    ramdisk[0] (bootstrap, measured in PCR1): /init, /etc/enclave-modules, /lib/modules/*.ko,
                                              the mount points
    ramdisk[1] (application, PCR2):           Python 3.11 + shared libraries from Debian,
                                              /opt/memwal/site-packages (wheels), /opt/memwal/app
"""

from __future__ import annotations

import os
from pathlib import Path

from imagebuild.cpio import CpioEntry, EntryKind, sorted_entries
from imagebuild.errors import RootfsError
from imagebuild.kernel import KernelParts

INIT_SOURCE = Path(__file__).with_name("init_program.py")
APPLICATION_PREFIX = "opt/memwal/app"
SITE_PACKAGES_PREFIX = "opt/memwal/site-packages"
MOUNT_POINTS = ("dev", "proc", "sys", "tmp", "root")
MAX_SOURCE_FILE_BYTES = 4 * 1024**2
# What the interpreter needs from the Debian packages. Everything else (documentation, locales,
# iconv modules, ldconfig and other tools) is left out to keep the image small.
KEEP_PREFIXES = ("lib/", "lib64/", "usr/lib/", "etc/python3.11/", "usr/bin/python3.11")
DROP_PREFIXES = ("usr/lib/x86_64-linux-gnu/gconv/", "usr/lib/x86_64-linux-gnu/audit/", "usr/lib/python3.11/__pycache__/")


def keep_debian_path(path: str) -> bool:
    if "/__pycache__/" in f"/{path}/":
        return False
    return path.startswith(KEEP_PREFIXES) and not path.startswith(DROP_PREFIXES)


def merge(entries: list[CpioEntry], *, origin: str, into: dict[str, CpioEntry]) -> None:
    """Add `entries` to `into`; a directory may repeat, a file or link only with identical content."""
    for entry in entries:
        existing = into.get(entry.path)
        if existing is None:
            into[entry.path] = entry
        elif existing.kind is EntryKind.DIRECTORY and entry.kind is EntryKind.DIRECTORY:
            continue
        elif existing != entry:
            raise RootfsError(f"{entry.path!r} from {origin} clashes with an earlier input")


def debian_runtime(packages: list[tuple[str, list[CpioEntry]]]) -> list[CpioEntry]:
    merged: dict[str, CpioEntry] = {}
    for name, entries in packages:
        merge([entry for entry in entries if keep_debian_path(entry.path)], origin=name, into=merged)
    if "usr/bin/python3.11" not in merged:
        raise RootfsError("the Debian inputs do not provide usr/bin/python3.11")
    return list(merged.values())


def application_sources(checkout: Path, packages: tuple[str, ...]) -> list[CpioEntry]:
    """The project's own packages, byte for byte, as 0644 files (no byte code, no caches)."""
    entries = []
    for package in packages:
        root = checkout / package
        if not (root / "__init__.py").is_file():
            raise RootfsError(f"application package {package!r} has no __init__.py in the checkout")
        for directory, subdirectories, files in os.walk(root):
            subdirectories[:] = sorted(name for name in subdirectories if name != "__pycache__")
            for name in sorted(files):
                if name.endswith((".pyc", ".pyo")):
                    continue
                path = Path(directory) / name
                if path.is_symlink() or path.stat().st_size > MAX_SOURCE_FILE_BYTES:
                    raise RootfsError(f"{path.relative_to(checkout)} is a symlink or larger than {MAX_SOURCE_FILE_BYTES} bytes")
                relative = path.relative_to(checkout).as_posix()
                entries.append(CpioEntry.file(f"{APPLICATION_PREFIX}/{relative}", path.read_bytes()))
    return entries


def bootstrap_entries(kernel: KernelParts) -> list[CpioEntry]:
    entries = [CpioEntry.directory(name) for name in MOUNT_POINTS]
    entries.append(CpioEntry.file("init", INIT_SOURCE.read_bytes(), executable=True))
    entries.append(CpioEntry.file("etc/enclave-modules", "".join(f"{module.name}\n" for module in kernel.modules).encode()))
    entries.extend(CpioEntry.file(f"lib/modules/{module.name}.ko", module.data) for module in kernel.modules)
    return entries


def application_entries(*, debian: list[CpioEntry], wheels: list[CpioEntry], sources: list[CpioEntry]) -> list[CpioEntry]:
    merged: dict[str, CpioEntry] = {}
    merge(debian, origin="Debian packages", into=merged)
    merge(wheels, origin="wheels", into=merged)
    merge(sources, origin="the checkout", into=merged)
    return list(merged.values())


def check_disjoint(bootstrap: list[CpioEntry], application: list[CpioEntry]) -> None:
    """Both ramdisks unpack into one root; a non-directory path in both would be overwritten."""
    first = {entry.path: entry for entry in sorted_entries(bootstrap)}
    for entry in sorted_entries(application):
        other = first.get(entry.path)
        if other is not None and not (other.kind is EntryKind.DIRECTORY and entry.kind is EntryKind.DIRECTORY):
            raise RootfsError(f"{entry.path!r} is in both ramdisks")
