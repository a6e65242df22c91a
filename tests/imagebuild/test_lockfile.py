import json

import pytest

from imagebuild.errors import LockFileError
from imagebuild.lockfile import LOCK_PATH, load_lock, parse_lock


def lock_document() -> dict:
    return json.loads(LOCK_PATH.read_bytes())


class TestLock:
    def test_committed_lock_parses(self):
        lock = load_lock()
        assert lock.kernel.deb.package.startswith("linux-source-")
        assert lock.kernel.toolchain["gcc-12"]
        assert lock.kernel.release in lock.kernel.deb.version
        assert {deb.package for deb in lock.runtime_debs} >= {"python3.11-minimal", "libc6", "libssl3"}
        assert len(lock.sha256) == 64

    def test_bad_sha256_rejected(self):
        document = lock_document()
        document["runtime_debs"][0]["sha256"] = "abc"
        with pytest.raises(LockFileError, match="bad sha256 'abc'"):
            parse_lock(json.dumps(document).encode())

    def test_unknown_archive_rejected(self):
        document = lock_document()
        document["kernel"]["deb"]["archive"] = "elsewhere"
        with pytest.raises(LockFileError, match="unknown archive 'elsewhere'"):
            parse_lock(json.dumps(document).encode())

    def test_non_pool_filename_rejected(self):
        document = lock_document()
        document["runtime_debs"][0]["filename"] = "pool/../../etc/passwd.deb"
        with pytest.raises(LockFileError, match="is not a pool path"):
            parse_lock(json.dumps(document).encode())

    def test_kernel_fragment_must_sit_next_to_the_lock(self):
        document = lock_document()
        document["kernel"]["config_fragment"] = "../../etc/kernel.config"
        with pytest.raises(LockFileError, match="must be a file name next to the lock"):
            parse_lock(json.dumps(document).encode())

    def test_kernel_toolchain_must_name_versions(self):
        document = lock_document()
        document["kernel"]["toolchain"] = {"gcc-12": 12}
        with pytest.raises(LockFileError, match="toolchain must map"):
            parse_lock(json.dumps(document).encode())

    def test_wrong_format_rejected(self):
        with pytest.raises(LockFileError, match="format must be 1"):
            parse_lock(b'{"format": 2}')

    def test_size_cap(self):
        with pytest.raises(LockFileError, match="larger than"):
            parse_lock(b" " * (300 * 1024))
