import io
import tarfile

import pytest

from imagebuild.cpio import EntryKind
from imagebuild.debian import ar_members, deb_entries
from imagebuild.errors import ArchiveError


def ar(members: dict[str, bytes]) -> bytes:
    out = b"!<arch>\n"
    for name, data in members.items():
        out += f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(data):<10}".encode() + b"`\n" + data
        out += b"\n" if len(data) % 2 else b""
    return out


def data_tar() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:xz") as tar:
        def add(name, kind, data=b"", mode=0o644, link=""):
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.size, info.linkname = kind, mode, len(data), link
            tar.addfile(info, io.BytesIO(data) if data else None)
        add("./", tarfile.DIRTYPE, mode=0o755)
        add("./usr/bin/python3.11", tarfile.REGTYPE, b"ELF", mode=0o755)
        add("./usr/bin/python3", tarfile.SYMTYPE, link="python3.11")
        add("./usr/bin/copy", tarfile.LNKTYPE, link="./usr/bin/python3.11")
    return buffer.getvalue()


class TestDebEntries:
    def test_files_links_and_hard_links(self):
        deb = ar({"debian-binary": b"2.0\n", "control.tar.xz": b"", "data.tar.xz": data_tar()})
        entries = {entry.path: entry for entry in deb_entries(deb)}
        assert entries["usr/bin/python3.11"].executable and entries["usr/bin/python3.11"].data == b"ELF"
        assert entries["usr/bin/python3"].kind is EntryKind.SYMLINK and entries["usr/bin/python3"].data == b"python3.11"
        assert entries["usr/bin/copy"].data == b"ELF"

    def test_not_an_ar_archive(self):
        with pytest.raises(ArchiveError, match="not an ar archive"):
            ar_members(b"PK\x03\x04")

    def test_missing_data_member(self):
        with pytest.raises(ArchiveError, match="no supported data member"):
            deb_entries(ar({"debian-binary": b"2.0\n", "data.tar.zst": b"x"}))

    def test_truncated_member(self):
        with pytest.raises(ArchiveError, match="runs past the end"):
            ar_members(ar({"data.tar.xz": b"abcdef"})[:-3])
