import gzip
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from imagebuild.cpio import CpioEntry, deterministic_gzip, read_cpio, sorted_entries, write_cpio
from imagebuild.errors import ArchiveError

REPOSITORY = Path(__file__).resolve().parents[2]
EPOCH = 1735689600


def sample_entries() -> list[CpioEntry]:
    return [
        CpioEntry.file("usr/bin/tool", b"#!/bin/sh\n", executable=True),
        CpioEntry.file("etc/config", b"a=1\n"),
        CpioEntry.symlink("lib64/loader", "/lib/x86_64-linux-gnu/loader"),
        CpioEntry.directory("usr"),
        CpioEntry.file("usr/lib/a-b/file", b"x" * 5),
        CpioEntry.file("usr/lib/a/file", b""),
    ]


class TestWriteCpio:
    def test_input_order_does_not_matter(self):
        entries = sample_entries()
        assert write_cpio(entries, mtime=EPOCH) == write_cpio(list(reversed(entries)), mtime=EPOCH)

    def test_parents_come_first_and_are_added(self):
        paths = [entry.path for entry in sorted_entries(sample_entries())]
        assert paths == [
            "etc", "etc/config", "lib64", "lib64/loader", "usr", "usr/bin", "usr/bin/tool",
            "usr/lib", "usr/lib/a", "usr/lib/a/file", "usr/lib/a-b", "usr/lib/a-b/file",
        ]

    def test_fixed_owner_mtime_modes_and_inodes(self):
        members = read_cpio(write_cpio(sample_entries(), mtime=EPOCH))
        assert {(member.uid, member.gid, member.mtime) for member in members} == {(0, 0, EPOCH)}
        assert [member.inode for member in members] == list(range(1, len(members) + 1))
        modes = {member.path: member.mode for member in members}
        assert modes["usr"] == stat.S_IFDIR | 0o755
        assert modes["usr/bin/tool"] == stat.S_IFREG | 0o755
        assert modes["etc/config"] == stat.S_IFREG | 0o644
        assert modes["lib64/loader"] == stat.S_IFLNK | 0o777

    def test_ends_with_trailer_and_is_aligned(self):
        archive = write_cpio(sample_entries(), mtime=EPOCH)
        assert b"TRAILER!!!\0" in archive[-128:]
        assert len(archive) % 4 == 0

    def test_read_back_equals_input(self):
        members = {member.path: member for member in read_cpio(write_cpio(sample_entries(), mtime=EPOCH))}
        for entry in sample_entries():
            assert members[entry.path].data == entry.data

    def test_different_content_gives_different_bytes(self):
        changed = [*sample_entries()[:-1], CpioEntry.file("usr/lib/a/file", b"!")]
        assert write_cpio(changed, mtime=EPOCH) != write_cpio(sample_entries(), mtime=EPOCH)

    def test_duplicate_path_rejected(self):
        with pytest.raises(ArchiveError, match="duplicate archive path 'etc/config'"):
            write_cpio([CpioEntry.file("etc/config", b"1"), CpioEntry.file("etc/config", b"2")], mtime=EPOCH)

    @pytest.mark.parametrize("path", ["", "/etc/passwd", "a/../b", "./a", "a//b", "a/"])
    def test_bad_paths_rejected(self, path):
        with pytest.raises(ArchiveError, match="invalid archive path"):
            write_cpio([CpioEntry.file(path, b"")], mtime=EPOCH)

    def test_file_used_as_directory_rejected(self):
        with pytest.raises(ArchiveError, match="'a' is a file but has children"):
            write_cpio([CpioEntry.file("a", b""), CpioEntry.file("a/b", b"")], mtime=EPOCH)

    def test_mtime_must_fit(self):
        with pytest.raises(ArchiveError, match="does not fit"):
            write_cpio([], mtime=2**32)


class TestReadCpio:
    def test_size_cap(self):
        archive = write_cpio(sample_entries(), mtime=EPOCH)
        with pytest.raises(ArchiveError, match="exceeds the cap"):
            read_cpio(archive, max_bytes=len(archive) - 1)

    def test_member_cap(self):
        with pytest.raises(ArchiveError, match="more than 3 members"):
            read_cpio(write_cpio(sample_entries(), mtime=EPOCH), max_members=3)

    def test_missing_trailer(self):
        archive = write_cpio(sample_entries(), mtime=EPOCH)
        with pytest.raises(ArchiveError, match="ends before its trailer"):
            read_cpio(archive[: archive.index(b"TRAILER!!!") - 110])

    def test_bad_magic(self):
        with pytest.raises(ArchiveError, match="bad cpio magic"):
            read_cpio(b"070707" + b"0" * 200)

    def test_truncated_member(self):
        archive = write_cpio([CpioEntry.file("big", b"x" * 1000)], mtime=EPOCH)
        with pytest.raises(ArchiveError, match="runs past the end"):
            read_cpio(archive[:300])


WRITE_SCRIPT = """
import sys
from imagebuild.cpio import CpioEntry, write_cpio
entries = [CpioEntry.file("b/x", b"1", executable=True), CpioEntry.file("a/\u00e9t\u00e9", b"2"),
           CpioEntry.symlink("c", "b/x"), CpioEntry.file("A", b"3")]
sys.stdout.buffer.write(write_cpio(entries, mtime=1735689600))
"""


class TestEnvironmentIndependence:
    def run_in(self, *, umask: int, timezone: str, locale: str) -> bytes:
        environment = {"PATH": os.environ.get("PATH", ""), "TZ": timezone, "LC_ALL": locale, "PYTHONPATH": str(REPOSITORY)}
        return subprocess.run(
            [sys.executable, "-c", WRITE_SCRIPT], env=environment, capture_output=True, check=True,
            preexec_fn=lambda: os.umask(umask),
        ).stdout

    def test_umask_timezone_and_locale_do_not_change_bytes(self):
        first = self.run_in(umask=0o022, timezone="UTC", locale="C")
        second = self.run_in(umask=0o077, timezone="Pacific/Kiritimati", locale="C.UTF-8")
        assert first == second
        assert len(read_cpio(first)) == 6


class TestDeterministicGzip:
    def test_no_timestamp_or_name_and_round_trips(self):
        compressed = deterministic_gzip(b"payload" * 100)
        assert compressed[4:8] == b"\0\0\0\0"  # MTIME field
        assert compressed[3] & 0x08 == 0  # FNAME flag clear
        assert gzip.decompress(compressed) == b"payload" * 100
        assert deterministic_gzip(b"payload" * 100) == compressed
