import ast
import ctypes
import errno
import os
import socket
import stat
import threading

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


class NitroCli:
    """The parent's side of the boot heartbeat as eif_loader's enclave_ready does it: read one byte,
    refuse anything but 0xB7, echo it. ``answer`` overrides what is sent back (None: close silently)."""

    def __init__(self, answer: bytes | str | None = "echo") -> None:
        self.enclave_end, self.parent_end = socket.socketpair()
        self.answer = answer
        self.received = b""
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        with self.parent_end:
            self.received = self.parent_end.recv(1)
            if self.answer == "echo":
                if self.received == init_program.HEARTBEAT_BYTE:
                    self.parent_end.sendall(self.received)
            elif self.answer == "hold":
                self.parent_end.recv(1)  # until the enclave side gives up and closes
            elif isinstance(self.answer, bytes):
                self.parent_end.sendall(self.answer)

    def connect(self, timeout: float) -> socket.socket:
        self.timeout = timeout
        return self.enclave_end


def refusing(code: int):
    def connect(timeout: float) -> socket.socket:
        raise OSError(code, os.strerror(code))

    return connect


class TestHeartbeat:
    def test_nitro_cli_protocol_constants(self):
        # aws-nitro-enclaves-cli: VMADDR_CID_PARENT = 3, ENCLAVE_READY_VSOCK_PORT = 9000, HEART_BEAT = 0xB7.
        assert (init_program.PARENT_CID, init_program.HEARTBEAT_PORT, init_program.HEARTBEAT_BYTE) == (3, 9000, b"\xb7")

    def test_the_byte_goes_out_and_its_echo_comes_back(self, capsys):
        parent = NitroCli()
        assert init_program.send_heartbeat(parent.connect, timeout=5) == "answered"
        parent.thread.join(5)
        assert parent.received == b"\xb7"
        assert parent.timeout == 5
        assert capsys.readouterr().err.strip() == init_program.HEARTBEAT_ANSWERED_MESSAGE

    def test_a_wrong_echo_is_a_failure_not_a_crash(self, capsys):
        assert init_program.send_heartbeat(NitroCli(answer=b"\x00").connect, timeout=5) == "failed"
        err = capsys.readouterr().err
        assert err.startswith(init_program.HEARTBEAT_FAILED_MESSAGE) and "answered b'\\x00'" in err

    def test_a_parent_that_closes_without_echo(self, capsys):
        assert init_program.send_heartbeat(NitroCli(answer=None).connect, timeout=5) == "failed"
        assert "answered b''" in capsys.readouterr().err

    def test_a_silent_parent_is_given_up_on_after_the_timeout(self, capsys):
        assert init_program.send_heartbeat(NitroCli(answer="hold").connect, timeout=0.2) == "failed"
        assert "no answer within 0.2 s" in capsys.readouterr().err

    @pytest.mark.parametrize("code", [errno.ENODEV, errno.EAFNOSUPPORT, errno.ENETUNREACH])
    def test_no_vsock_path_is_logged_and_skipped(self, code, capsys):
        assert init_program.send_heartbeat(refusing(code), timeout=5) == "absent"
        assert init_program.HEARTBEAT_ABSENT_MESSAGE in capsys.readouterr().err

    def test_a_refused_connection_is_a_failure(self, capsys):
        # vsock answers a connect to a port nobody listens on with a reset: nitro-cli was not waiting.
        assert init_program.send_heartbeat(refusing(errno.ECONNRESET), timeout=5) == "failed"
        assert init_program.HEARTBEAT_FAILED_MESSAGE in capsys.readouterr().err

    def test_the_real_connector_targets_the_parent(self, monkeypatch):
        seen = {}

        class Recorder:
            def __init__(self, family, kind):
                seen["socket"] = (family, kind)

            def settimeout(self, timeout):
                seen["timeout"] = timeout

            def connect(self, address):
                seen["address"] = address
                raise OSError(errno.ENODEV, "no device")

            def close(self):
                seen["closed"] = True

        monkeypatch.setattr(init_program.socket, "socket", Recorder)
        with pytest.raises(OSError):
            init_program.connect_to_parent(3.0)
        assert seen == {"socket": (socket.AF_VSOCK, socket.SOCK_STREAM), "timeout": 3.0, "address": (3, 9000), "closed": True}

    def test_before_the_random_wait_and_the_exec(self, monkeypatch):
        order = []
        monkeypatch.setattr(init_program, "mount_all", lambda mount: order.append("mount"))
        monkeypatch.setattr(init_program, "loopback_up", lambda: order.append("lo"))
        monkeypatch.setattr(init_program, "send_heartbeat", lambda: order.append("heartbeat") or "absent")
        monkeypatch.setattr(init_program, "wait_for_random_pool", lambda: order.append("random"))
        init_program.prepare_machine()
        assert order == ["mount", "lo", "heartbeat", "random"]


class TestExec:
    def test_message_names_the_program(self):
        assert init_program.EXEC_MESSAGE == "init: starting the enclave runtime: python3.11 -m enclave"
        assert init_program.exec_message(["/usr/bin/python3.11", "-m", "x", "--y"]).endswith("python3.11 -m x --y")


class TestBootstrapRamdisk:
    def test_static_device_nodes_survive_the_archive(self):
        archive = cpio.write_cpio(rootfs.bootstrap_entries(), mtime=1)
        members = {member.path: member for member in cpio.read_cpio(archive)}
        for path, numbers in {"dev/console": (5, 1), "dev/null": (1, 3), "dev/urandom": (1, 9)}.items():
            assert stat.S_ISCHR(members[path].mode), path
            assert members[path].device == numbers
        assert members["init"].data == INIT_SOURCE.read_bytes()
        assert not any(path.startswith(("lib/modules", "etc/enclave-modules")) for path in members)
