import dataclasses
import io
import json
import subprocess
import tarfile

import pytest

from imagebuild import kernel_build
from imagebuild.errors import KernelBuildError
from imagebuild.kernel_build import (
    BuiltKernel,
    build_environment,
    build_timestamp,
    cache_key,
    check_bzimage,
    extract_source,
    toolchain_problems,
)
from imagebuild.lockfile import load_lock

LOCK = load_lock()
FRAGMENT = kernel_build.fragment_text(LOCK.kernel)


def with_kernel(**changes):
    return dataclasses.replace(LOCK, kernel=dataclasses.replace(LOCK.kernel, **changes))


def tar_xz(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:xz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def ar(members: dict[str, bytes]) -> bytes:
    out = [b"!<arch>\n"]
    for name, data in members.items():
        out.append(f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{0o100644:<8o}{len(data):<10}`\n".encode() + data + b"\n" * (len(data) % 2))
    return b"".join(out)


class TestReproducibleEnvironment:
    def test_timestamp_names_its_zone_and_means_the_epoch_in_any_zone(self):
        text = build_timestamp(LOCK.source_date_epoch)
        assert text == "Wed Jan  1 00:00:00 UTC 2025"
        # gen_initramfs.sh turns it into mtimes with `date -d`; the builder's TZ must not matter.
        for zone in ("UTC", "Asia/Tokyo", "America/Los_Angeles"):
            seconds = subprocess.run(["date", "-d", text, "+%s"], env={"TZ": zone}, capture_output=True, text=True, check=True)
            assert int(seconds.stdout) == LOCK.source_date_epoch

    def test_environment_is_complete_and_inherits_nothing(self, tmp_path, monkeypatch):
        monkeypatch.setenv("CC", "clang")
        environment = build_environment(LOCK.kernel, LOCK.source_date_epoch, tmp_path)
        assert "CC" not in environment
        assert environment["KBUILD_BUILD_USER"] == LOCK.kernel.build_user
        assert environment["KBUILD_BUILD_HOST"] == LOCK.kernel.build_host
        assert environment["TZ"] == "UTC" and environment["LC_ALL"] == "C"
        assert environment["LOCALVERSION"] == ""


class TestCacheKey:
    def test_stable(self):
        assert cache_key(LOCK, FRAGMENT) == cache_key(LOCK, FRAGMENT)

    @pytest.mark.parametrize("change", [
        {"toolchain": {**LOCK.kernel.toolchain, "gcc-12": "12.2.0-15"}},
        {"deb": dataclasses.replace(LOCK.kernel.deb, sha256="0" * 64)},
        {"build_user": "someone"},
        {"release": "6.12.999"},
    ])
    def test_every_input_changes_it(self, change):
        assert cache_key(with_kernel(**change), FRAGMENT) != cache_key(LOCK, FRAGMENT)

    def test_fragment_changes_it(self):
        assert cache_key(LOCK, FRAGMENT + "CONFIG_EXTRA=y\n") != cache_key(LOCK, FRAGMENT)

    def test_fragment_is_read_next_to_the_given_lock(self, tmp_path):
        (tmp_path / LOCK.kernel.config_fragment).write_text("CONFIG_ONLY_HERE=y\n")
        assert kernel_build.fragment_text(LOCK.kernel, tmp_path) == "CONFIG_ONLY_HERE=y\n"


class TestCache:
    def test_stored_kernel_is_reused_and_a_damaged_one_is_not(self, tmp_path):
        directory = tmp_path / "kernel" / "key"
        built = BuiltKernel(b"\0" * 0x202 + b"HdrS" + b"x" * 100, "CONFIG_A=y\n", "key", from_cache=False)
        kernel_build._store(directory, built, 1.0)
        again = kernel_build._cached(directory, "key")
        assert again is not None and again.bzimage == built.bzimage and again.from_cache
        (directory / "bzImage").write_bytes(b"tampered")
        assert kernel_build._cached(directory, "key") is None

    def test_warm_build_uses_the_cache_without_toolchain_or_source(self, tmp_path, monkeypatch):
        built = BuiltKernel(b"\0" * 0x202 + b"HdrS", "CONFIG_A=y\n", cache_key(LOCK, FRAGMENT), from_cache=False)
        kernel_build._store(tmp_path / "kernel" / cache_key(LOCK, FRAGMENT), built, 1.0)
        monkeypatch.setattr(kernel_build, "check_toolchain", lambda kernel: pytest.fail("toolchain checked on a cache hit"))
        result = kernel_build.build_kernel(LOCK, inputs=None, cache=tmp_path, progress=lambda line: None)
        assert result.from_cache and result.bzimage == built.bzimage


class TestToolchain:
    def test_differences_are_listed(self):
        problems = toolchain_problems({"gcc-12": "1", "make": "2", "bc": "3"}, {"gcc-12": "1", "make": "9"})
        assert problems == ["make: pinned 2, installed 9", "bc: pinned 3, installed (not installed)"]

    def test_installed_versions_come_from_dpkg(self):
        versions = kernel_build.installed_versions(["dpkg", "no-such-package-here"])
        assert "dpkg" in versions and "no-such-package-here" not in versions

    def test_wrong_pin_refuses_with_instructions(self):
        kernel = with_kernel(toolchain={"dpkg": "0.0-not-this-version"}).kernel
        with pytest.raises(KernelBuildError, match=r"(?s)dpkg: pinned 0.0-not-this-version, installed .*update the `toolchain` pins"):
            kernel_build.check_toolchain(kernel)


class TestSource:
    def test_tarball_inside_the_deb_is_unpacked(self, tmp_path):
        tree = tar_xz({"linux-source-6.12/Makefile": b"VERSION = 6\n", "linux-source-6.12/kernel/fork.c": b"int x;\n"})
        deb = ar({"debian-binary": b"2.0\n", "control.tar.xz": tar_xz({}), "data.tar.xz": tar_xz({"./usr/src/linux-source-6.12.tar.xz": tree})})
        top = extract_source(deb, "usr/src/linux-source-6.12.tar.xz", tmp_path)
        assert (top / "kernel" / "fork.c").read_bytes() == b"int x;\n"
        assert not (tmp_path / "linux-source.tar.xz").exists()

    def test_missing_tarball_is_named(self, tmp_path):
        deb = ar({"debian-binary": b"2.0\n", "data.tar.xz": tar_xz({"./usr/share/doc/x": b""})})
        with pytest.raises(KernelBuildError, match="usr/src/linux-source-6.12.tar.xz is not in the kernel source .deb"):
            extract_source(deb, "usr/src/linux-source-6.12.tar.xz", tmp_path)


class TestBzImage:
    def test_header_checked(self):
        check_bzimage(b"\0" * 0x202 + b"HdrS")
        with pytest.raises(KernelBuildError, match="not a bzImage"):
            check_bzimage(b"plain")


def test_build_info_is_json(tmp_path):
    kernel_build._store(tmp_path / "k", BuiltKernel(b"b", "c", "k", False), 12.4)
    assert json.loads((tmp_path / "k" / "build-info.json").read_text())["build_seconds"] == 12


def test_a_second_builder_of_the_same_kernel_waits_for_the_first(tmp_path):
    import fcntl
    import threading

    key = cache_key(LOCK, FRAGMENT)
    kernel_build._store(tmp_path / "kernel" / key, BuiltKernel(b"\0" * 0x202 + b"HdrS", "c", key, False), 1.0)
    waiting, results = threading.Event(), []
    with open(tmp_path / "kernel" / f"{key}.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        worker = threading.Thread(
            target=lambda: results.append(
                kernel_build.build_kernel(LOCK, None, cache=tmp_path, progress=lambda line: "waiting" in line and waiting.set())
            )
        )
        worker.start()
        assert waiting.wait(timeout=30)
        assert not results  # blocked on the first builder's lock
    worker.join(timeout=30)
    assert results and results[0].from_cache
