"""Deterministic `newc` cpio archives: the format Linux unpacks as an initramfs.

Every byte of the output depends only on the entries: paths are sorted by their components (so a
directory always precedes its children), owners are 0:0, the mtime is one fixed value, modes are
normalised, inode numbers are the position in that order, and missing parent directories are added.
"""

from __future__ import annotations

import dataclasses
import enum
import gzip
import posixpath
import stat
from collections.abc import Iterable
from dataclasses import dataclass

from imagebuild.errors import ArchiveError

NEWC_MAGIC = b"070701"
HEADER_SIZE = 110
TRAILER_NAME = "TRAILER!!!"
MAX_PATH_BYTES = 4096
# Reading is for tests and auditors; an initramfs larger than this is not something we build.
DEFAULT_READ_CAP = 2 * 1024**3
DEFAULT_MAX_MEMBERS = 200_000


class EntryKind(enum.Enum):
    FILE = "file"
    DIRECTORY = "directory"
    SYMLINK = "symlink"
    CHARACTER_DEVICE = "character device"


@dataclass(frozen=True)
class CpioEntry:
    """One path of the archive. `data` is the file content, or the target of a symlink;
    `device` is the (major, minor) number of a character device."""

    path: str
    kind: EntryKind
    data: bytes = b""
    executable: bool = False
    device: tuple[int, int] = (0, 0)

    @staticmethod
    def file(path: str, data: bytes, *, executable: bool = False) -> "CpioEntry":
        return CpioEntry(path, EntryKind.FILE, data, executable)

    @staticmethod
    def directory(path: str) -> "CpioEntry":
        return CpioEntry(path, EntryKind.DIRECTORY)

    @staticmethod
    def symlink(path: str, target: str) -> "CpioEntry":
        return CpioEntry(path, EntryKind.SYMLINK, target.encode())

    @staticmethod
    def character_device(path: str, major: int, minor: int) -> "CpioEntry":
        return CpioEntry(path, EntryKind.CHARACTER_DEVICE, device=(major, minor))

    @property
    def mode(self) -> int:
        if self.kind is EntryKind.DIRECTORY:
            return stat.S_IFDIR | 0o755
        if self.kind is EntryKind.SYMLINK:
            return stat.S_IFLNK | 0o777
        if self.kind is EntryKind.CHARACTER_DEVICE:
            return stat.S_IFCHR | 0o600  # only root (PID 1) runs before devtmpfs replaces /dev
        return stat.S_IFREG | (0o755 if self.executable else 0o644)


@dataclass(frozen=True)
class CpioMember:
    """One header + body read back from an archive, with every field as stored."""

    path: str
    mode: int
    uid: int
    gid: int
    nlink: int
    mtime: int
    inode: int
    data: bytes
    device: tuple[int, int] = (0, 0)


def normalize_path(path: str) -> str:
    """Archive paths are relative and slash-separated, with no empty, `.` or `..` component."""
    parts = path.split("/")
    if not path or any(part in ("", ".", "..") for part in parts) or "\0" in path:
        raise ArchiveError(f"invalid archive path {path[:64]!r}")
    if len(path.encode()) > MAX_PATH_BYTES:
        raise ArchiveError(f"archive path longer than {MAX_PATH_BYTES} bytes: {path[:64]!r}")
    return path


def _sort_key(path: str) -> tuple[bytes, ...]:
    # Component-wise byte order: locale-independent and parents sort before children.
    return tuple(part.encode() for part in path.split("/"))


def sorted_entries(entries: Iterable[CpioEntry]) -> list[CpioEntry]:
    """Normalise paths, reject duplicates, add missing parent directories, and sort."""
    by_path: dict[str, CpioEntry] = {}
    for entry in entries:
        path = normalize_path(entry.path)
        if path in by_path:
            raise ArchiveError(f"duplicate archive path {path!r}")
        by_path[path] = dataclasses.replace(entry, path=path)
    for path in list(by_path):
        parent = posixpath.dirname(path)
        while parent:
            existing = by_path.get(parent)
            if existing is None:
                by_path[parent] = CpioEntry.directory(parent)
            elif existing.kind is not EntryKind.DIRECTORY:
                raise ArchiveError(f"{parent!r} is a {existing.kind.value} but has children")
            parent = posixpath.dirname(parent)
    return [by_path[path] for path in sorted(by_path, key=_sort_key)]


def _pad(length: int) -> bytes:
    return b"\0" * (-length % 4)


def _header(*, inode: int, mode: int, nlink: int, mtime: int, size: int, name_size: int, device: tuple[int, int]) -> bytes:
    fields = (inode, mode, 0, 0, nlink, mtime, size, 0, 0, device[0], device[1], name_size, 0)
    return NEWC_MAGIC + b"".join(b"%08X" % value for value in fields)


def _member(*, name: str, inode: int, mode: int, nlink: int, mtime: int, data: bytes, device: tuple[int, int] = (0, 0)) -> bytes:
    encoded = name.encode() + b"\0"
    header = _header(inode=inode, mode=mode, nlink=nlink, mtime=mtime, size=len(data), name_size=len(encoded), device=device)
    head = header + encoded
    return head + _pad(len(head)) + data + _pad(len(data))


def write_cpio(entries: Iterable[CpioEntry], *, mtime: int) -> bytes:
    """Serialise `entries` as one deterministic newc archive ending with the trailer."""
    if not 0 <= mtime < 2**32:
        raise ArchiveError(f"mtime {mtime} does not fit a newc header")
    parts = []
    for inode, entry in enumerate(sorted_entries(entries), start=1):
        nlink = 2 if entry.kind is EntryKind.DIRECTORY else 1
        parts.append(
            _member(name=entry.path, inode=inode, mode=entry.mode, nlink=nlink, mtime=mtime, data=entry.data, device=entry.device)
        )
    parts.append(_member(name=TRAILER_NAME, inode=0, mode=0, nlink=1, mtime=0, data=b""))
    return b"".join(parts)


def read_cpio(archive: bytes, *, max_bytes: int = DEFAULT_READ_CAP, max_members: int = DEFAULT_MAX_MEMBERS) -> list[CpioMember]:
    """Parse one newc archive (up to its trailer); raise ArchiveError on anything malformed."""
    if len(archive) > max_bytes:
        raise ArchiveError(f"cpio archive of {len(archive)} bytes exceeds the cap of {max_bytes}")
    members: list[CpioMember] = []
    offset = 0
    while True:
        if offset + HEADER_SIZE > len(archive):
            raise ArchiveError("cpio archive ends before its trailer")
        header = archive[offset : offset + HEADER_SIZE]
        if header[:6] != NEWC_MAGIC:
            raise ArchiveError(f"bad cpio magic at offset {offset}")
        try:
            fields = [int(header[6 + 8 * index : 14 + 8 * index], 16) for index in range(13)]
        except ValueError as error:
            raise ArchiveError(f"non-hex cpio header field at offset {offset}") from error
        inode, mode, uid, gid, nlink, mtime, size, _, _, device_major, device_minor, name_size, _ = fields
        if not 1 <= name_size <= MAX_PATH_BYTES + 1:
            raise ArchiveError(f"cpio name size {name_size} out of range at offset {offset}")
        name_end = offset + HEADER_SIZE + name_size
        data_start = name_end + (-(HEADER_SIZE + name_size) % 4)
        data_end = data_start + size
        if data_end > len(archive):
            raise ArchiveError(f"cpio member at offset {offset} runs past the end")
        raw_name = archive[offset + HEADER_SIZE : name_end]
        if raw_name[-1:] != b"\0":
            raise ArchiveError(f"cpio name at offset {offset} is not NUL-terminated")
        name = raw_name[:-1].decode("utf-8", errors="strict")
        if name == TRAILER_NAME:
            return members
        if len(members) >= max_members:
            raise ArchiveError(f"cpio archive has more than {max_members} members")
        members.append(CpioMember(name, mode, uid, gid, nlink, mtime, inode, archive[data_start:data_end], (device_major, device_minor)))
        offset = data_end + (-size % 4)


def deterministic_gzip(data: bytes) -> bytes:
    """gzip with mtime 0 and no file name. The bytes still depend on the zlib build, so the
    enclave image does not use it by default (see docs/reproducing.md)."""
    return gzip.compress(data, compresslevel=9, mtime=0)
