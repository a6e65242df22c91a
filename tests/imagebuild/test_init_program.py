import ast
import ctypes
import errno
import os
import stat

import pytest

from imagebuild import cpio, init_program, rootfs
from imagebuild.rootfs import INIT_SOURCE


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class TestInitProgram:
    def test_is_a_standalone_script(self):
        source = INIT_SOURCE.read_text()
        assert source.startswith("#!/usr/bin/python3.11 -I\n")
        tree = ast.parse(source)
        imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        assert "imagebuild" not in imported

    def test_no_module_loading_left(self):
        source = INIT_SOURCE.read_text()
        assert "finit_module" not in source and "/lib/modules" not in source

    def test_fixed_runtime_environment(self):
        assert init_program.RUNTIME_ENVIRONMENT["PYTHONHASHSEED"] == "0"
        assert init_program.RUNTIME_ENVIRONMENT["PYTHONDONTWRITEBYTECODE"] == "1"
        assert init_program.RUNTIME_ARGUMENTS == ("/usr/bin/python3.11", "-m", "enclave")


class TestMounts:
    def test_devtmpfs_before_shm_and_in_order(self, monkeypatch, tmp_path):
        calls = []
        monkeypatch.setattr(init_program.os, "makedirs", lambda path, exist_ok: calls.append(("mkdir", path)))

        def mount(source, target, kind, flags, options):
            calls.append(("mount", target.decode(), kind.decode()))
            return 0

        init_program.mount_all(mount)
        mounted = [call[1] for call in calls if call[0] == "mount"]
        assert mounted == ["/proc", "/sys", "/dev", "/dev/shm", "/tmp"]
        # /dev/shm is created after devtmpfs is mounted over /dev, or the mount would hide it.
        assert calls.index(("mkdir", "/dev/shm")) > calls.index(("mount", "/dev", "devtmpfs"))

    def test_already_mounted_is_fine(self, monkeypatch):
        monkeypatch.setattr(init_program.os, "makedirs", lambda path, exist_ok: None)

        def mount(*arguments):
            ctypes.set_errno(errno.EBUSY)
            return -1

        init_program.mount_all(mount)

    def test_failure_names_the_mount(self, monkeypatch):
        monkeypatch.setattr(init_program.os, "makedirs", lambda path, exist_ok: None)

        def mount(source, target, kind, flags, options):
            if kind == b"sysfs":
                ctypes.set_errno(errno.ENODEV)
                return -1
            return 0

        with pytest.raises(OSError, match="mount sysfs on /sys: No such device"):
            init_program.mount_all(mount)


class TestRandomPool:
    def test_ready_pool_is_not_waited_for(self, capsys):
        calls = []

        def getrandom(size, flags):
            calls.append(flags)
            return b"x"

        assert init_program.wait_for_random_pool(getrandom, FakeClock()) is None
        assert calls == [os.GRND_NONBLOCK]
        assert capsys.readouterr().err == ""

    def test_uninitialised_pool_says_so_then_blocks(self, capsys):
        clock, calls = FakeClock(), []

        def getrandom(size, flags):
            calls.append(flags)
            if flags & os.GRND_NONBLOCK:
                raise BlockingIOError(errno.EAGAIN, "would block")
            clock.now += 2.5
            return b"x"

        assert init_program.wait_for_random_pool(getrandom, clock) == 2.5
        assert calls == [os.GRND_NONBLOCK, 0]
        assert init_program.RANDOM_WAIT_MESSAGE in capsys.readouterr().err


class TestBootstrapRamdisk:
    def test_static_device_nodes_survive_the_archive(self):
        archive = cpio.write_cpio(rootfs.bootstrap_entries(), mtime=1)
        members = {member.path: member for member in cpio.read_cpio(archive)}
        for path, numbers in {"dev/console": (5, 1), "dev/null": (1, 3), "dev/urandom": (1, 9)}.items():
            assert stat.S_ISCHR(members[path].mode), path
            assert members[path].device == numbers
        assert members["init"].data == INIT_SOURCE.read_bytes()
        assert not any(path.startswith(("lib/modules", "etc/enclave-modules")) for path in members)
