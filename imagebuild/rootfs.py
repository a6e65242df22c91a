"""Assemble the two ramdisks from Debian files, wheels, the project's sources and /init.

    ramdisk[0] (bootstrap, measured in PCR1): /init, static /dev/console, /dev/null, /dev/urandom,
                                              the mount points
    ramdisk[1] (application, PCR2):           Python 3.11 + shared libraries from Debian,
                                              /opt/memwal/site-packages (the wheels contents.py selects),
                                              /opt/memwal/app (the modules contents.py derives),
                                              /etc/nsswitch.conf (names resolve from /etc/hosts only)

What is left out of the inputs to keep the image small and free of dead weight: from Debian,
everything but the interpreter, its libraries and the standard library (without its test suite and
pydoc's topic index); from wheels, test directories, type stubs, C/Cython sources and headers, static
libraries, documentation and the dist-info bookkeeping (RECORD, WHEEL, INSTALLER; METADATA, entry
points and licence files stay).
"""

from __future__ import annotations

from pathlib import Path

from imagebuild.cpio import CpioEntry, EntryKind, sorted_entries
from imagebuild.errors import RootfsError

INIT_SOURCE = Path(__file__).with_name("init_program.py")
APPLICATION_PREFIX = "opt/memwal/app"
SITE_PACKAGES_PREFIX = "opt/memwal/site-packages"
MOUNT_POINTS = ("dev", "proc", "sys", "tmp", "root")
# What PID 1 needs before it mounts devtmpfs (Linux's fixed numbers: devices.txt).
STATIC_DEVICES = (("dev/console", 5, 1), ("dev/null", 1, 3), ("dev/urandom", 1, 9))
MAX_SOURCE_FILE_BYTES = 4 * 1024**2
# What the interpreter needs from the Debian packages. Everything else (documentation, locales,
# iconv modules, ldconfig and other tools) is left out to keep the image small.
KEEP_PREFIXES = ("lib/", "lib64/", "usr/lib/", "etc/python3.11/", "usr/bin/python3.11")
DROP_PREFIXES = (
    "usr/lib/x86_64-linux-gnu/gconv/",
    "usr/lib/x86_64-linux-gnu/audit/",
    "usr/lib/python3.11/__pycache__/",
    "usr/lib/python3.11/test/",
    "usr/lib/python3.11/pydoc_data/",
)
# Inside the enclave no name is looked up anywhere but /etc/hosts (written from the manifest at boot).
NSSWITCH = b"# memwal-enclave: names resolve only from /etc/hosts (written from the manifest at boot)\nhosts: files\n"
# Wheel members the image never runs (paths relative to site-packages).
WHEEL_TEST_DIRECTORIES = frozenset({"tests", "test", "_tests", "benchmarks"})
WHEEL_DROPPED_SUFFIXES = (".pyi", ".pyx", ".pxd", ".pxi", ".c", ".h", ".hpp", ".cpp", ".f", ".f90", ".a", ".md", ".rst")
WHEEL_DROPPED_NAMES = frozenset({"py.typed"})
DIST_INFO_KEPT = ("METADATA", "entry_points.txt", "top_level.txt")
LICENCE_MARKERS = ("LICEN", "COPYING", "NOTICE", "AUTHORS")


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


def keep_wheel_path(relative: str) -> bool:
    """Whether a site-packages path (as a wheel installs it) belongs in the image."""
    parts = relative.split("/")
    name = parts[-1]
    if parts[0].endswith(".dist-info"):
        return name in DIST_INFO_KEPT or any(marker in part.upper() for part in parts[1:] for marker in LICENCE_MARKERS)
    if any(part in WHEEL_TEST_DIRECTORIES for part in parts[1:-1]) or "__pycache__" in parts:
        return False
    return name not in WHEEL_DROPPED_NAMES and not name.endswith(WHEEL_DROPPED_SUFFIXES)


def site_packages(entries: list[CpioEntry]) -> list[CpioEntry]:
    """``entries`` (under SITE_PACKAGES_PREFIX) without what keep_wheel_path drops."""
    prefix = SITE_PACKAGES_PREFIX + "/"
    return [entry for entry in entries if keep_wheel_path(entry.path.removeprefix(prefix))]


def application_sources(checkout: Path, files: tuple[str, ...]) -> list[CpioEntry]:
    """The project's files contents.py selected (paths relative to the checkout), byte for byte, as 0644 files."""
    entries = []
    for relative in files:
        path = checkout / relative
        if not path.is_file() or path.is_symlink() or path.stat().st_size > MAX_SOURCE_FILE_BYTES:
            raise RootfsError(f"{relative} is missing, a symlink or larger than {MAX_SOURCE_FILE_BYTES} bytes")
        entries.append(CpioEntry.file(f"{APPLICATION_PREFIX}/{relative}", path.read_bytes()))
    return entries


def system_files() -> list[CpioEntry]:
    """Configuration files of the image itself (not from any package)."""
    return [CpioEntry.file("etc/nsswitch.conf", NSSWITCH)]


def bootstrap_entries() -> list[CpioEntry]:
    entries = [CpioEntry.directory(name) for name in MOUNT_POINTS]
    entries.extend(CpioEntry.character_device(path, major, minor) for path, major, minor in STATIC_DEVICES)
    entries.append(CpioEntry.file("init", INIT_SOURCE.read_bytes(), executable=True))
    return entries


def application_entries(*, debian: list[CpioEntry], wheels: list[CpioEntry], sources: list[CpioEntry]) -> list[CpioEntry]:
    merged: dict[str, CpioEntry] = {}
    merge(debian, origin="Debian packages", into=merged)
    merge(wheels, origin="wheels", into=merged)
    merge(sources, origin="the checkout", into=merged)
    merge(system_files(), origin="the image's own files", into=merged)
    return list(merged.values())


def check_disjoint(bootstrap: list[CpioEntry], application: list[CpioEntry]) -> None:
    """Both ramdisks unpack into one root; a non-directory path in both would be overwritten."""
    first = {entry.path: entry for entry in sorted_entries(bootstrap)}
    for entry in sorted_entries(application):
        other = first.get(entry.path)
        if other is not None and not (other.kind is EntryKind.DIRECTORY and entry.kind is EntryKind.DIRECTORY):
            raise RootfsError(f"{entry.path!r} is in both ramdisks")
