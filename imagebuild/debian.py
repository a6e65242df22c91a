"""Read the files of a Debian binary package (.deb = ar archive holding data.tar.xz) in pure Python."""

from __future__ import annotations

import io
import posixpath
import tarfile
from typing import Literal

from imagebuild.cpio import CpioEntry
from imagebuild.errors import ArchiveError

AR_MAGIC = b"!<arch>\n"
AR_HEADER_SIZE = 60
MAX_DEB_BYTES = 512 * 1024**2
MAX_UNPACKED_BYTES = 2 * 1024**3
DATA_MEMBERS: dict[str, Literal["r:xz", "r:gz", "r:"]] = {"data.tar.xz": "r:xz", "data.tar.gz": "r:gz", "data.tar": "r:"}


def ar_members(archive: bytes) -> dict[str, bytes]:
    """Members of a System V ar archive as Debian writes it (no long names)."""
    if len(archive) > MAX_DEB_BYTES:
        raise ArchiveError(f".deb of {len(archive)} bytes exceeds the cap of {MAX_DEB_BYTES}")
    if not archive.startswith(AR_MAGIC):
        raise ArchiveError("not an ar archive")
    members: dict[str, bytes] = {}
    offset = len(AR_MAGIC)
    while offset < len(archive):
        header = archive[offset : offset + AR_HEADER_SIZE]
        if len(header) != AR_HEADER_SIZE or header[58:60] != b"`\n":
            raise ArchiveError(f"bad ar header at offset {offset}")
        name = header[:16].decode("ascii", "strict").rstrip().rstrip("/")
        try:
            size = int(header[48:58].decode("ascii").strip())
        except ValueError as error:
            raise ArchiveError(f"bad ar member size at offset {offset}") from error
        start = offset + AR_HEADER_SIZE
        if start + size > len(archive):
            raise ArchiveError(f"ar member {name!r} runs past the end")
        members[name] = archive[start : start + size]
        offset = start + size + (size % 2)
    return members


def _clean(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return posixpath.normpath(name).lstrip("/") if name else ""


def deb_entries(deb: bytes) -> list[CpioEntry]:
    """Files, directories and symlinks of a .deb's data archive. Hard links become copies."""
    members = ar_members(deb)
    found = [name for name in DATA_MEMBERS if name in members]
    if not found:
        raise ArchiveError(f"no supported data member in .deb (has {sorted(members)})")
    data_name = found[0]
    entries: list[CpioEntry] = []
    contents: dict[str, bytes] = {}
    unpacked = 0
    with tarfile.open(fileobj=io.BytesIO(members[data_name]), mode=DATA_MEMBERS[data_name]) as tar:
        for member in tar:
            path = _clean(member.name)
            if path in ("", ".") or path.startswith(".."):
                continue
            if member.isdir():
                entries.append(CpioEntry.directory(path))
            elif member.issym():
                entries.append(CpioEntry.symlink(path, member.linkname))
            elif member.islnk():
                target = _clean(member.linkname)
                if target not in contents:
                    raise ArchiveError(f"hard link {path!r} to unknown {target!r}")
                entries.append(CpioEntry.file(path, contents[target], executable=bool(member.mode & 0o111)))
            elif member.isfile():
                unpacked += member.size
                if unpacked > MAX_UNPACKED_BYTES:
                    raise ArchiveError(f".deb unpacks to more than {MAX_UNPACKED_BYTES} bytes")
                extracted = tar.extractfile(member)
                data = extracted.read() if extracted is not None else b""
                contents[path] = data
                entries.append(CpioEntry.file(path, data, executable=bool(member.mode & 0o111)))
            else:
                raise ArchiveError(f"unsupported tar member type for {path!r}")
    return entries
