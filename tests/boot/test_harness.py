"""The QEMU harness itself, without booting (these run in `make test`)."""

import shutil
import socket

import pytest

from devtools.appliance import ApplianceError
from devtools.simulated_enclave import ROOT_PEM_BEGIN, ROOT_PEM_END
from imagebuild import cpio, eif
from tests.boot.qemu import FORWARD_ADDRESS, BootImage, GuestFile, GuestForward, HostForward, Qemu
from tests.boot.qemu_appliance import OFFSET_ATTEMPTS, free_offset, simulator_root_from_console

BZIMAGE = b"\0" * 0x202 + b"HdrS"


def eif_file(tmp_path):
    ramdisks = [cpio.write_cpio([cpio.CpioEntry.file("init", b"#!")], mtime=1), cpio.write_cpio([cpio.CpioEntry.file("app", b"x")], mtime=1)]
    path = tmp_path / "test.eif"
    path.write_bytes(eif.serialize(eif.build_image(kernel=BZIMAGE, cmdline="console=ttyS0", ramdisks=ramdisks, metadata=b"{}")))
    return path, ramdisks


class TestBootImage:
    def test_read_out_of_an_eif(self, tmp_path):
        path, ramdisks = eif_file(tmp_path)
        image = BootImage.from_eif(path)
        assert image.kernel == BZIMAGE and image.cmdline == "console=ttyS0" and image.ramdisks == tuple(ramdisks)


@pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None, reason="qemu-system-x86_64 is not installed")
class TestCommand:
    def test_network_is_restricted_to_explicit_forwards(self, tmp_path):
        image = BootImage(BZIMAGE, "console=ttyS0", (b"",))
        machine = Qemu(image, tmp_path, network=True, guest_forwards=(GuestForward(9000, 4321),), host_forwards=(HostForward(8443, 443),))
        command = machine.command()
        netdev = command[command.index("-netdev") + 1]
        assert netdev.startswith("user,id=net0,restrict=on,")
        assert f"guestfwd=tcp:{FORWARD_ADDRESS}:9000-cmd:socat - TCP:127.0.0.1:4321" in netdev
        assert "hostfwd=tcp:127.0.0.1:8443-:443" in netdev
        assert "microvm,acpi=off" in command and "-no-reboot" in command

    def test_no_network_device_unless_asked(self, tmp_path):
        command = Qemu(BootImage(BZIMAGE, "", (b"",)), tmp_path).command()
        assert "-netdev" not in command and "virtio-rng-device" in command


class TestGuestFile:
    def test_cat_per_connection(self, tmp_path):
        forward = GuestFile(6999, tmp_path / "measurements.json")
        assert forward.argument() == f"guestfwd=tcp:{FORWARD_ADDRESS}:6999-cmd:cat {tmp_path / 'measurements.json'}"

    def test_a_comma_in_the_path_is_refused(self, tmp_path):
        with pytest.raises(ValueError, match="comma"):
            GuestFile(6999, tmp_path / "a,b.json").argument()


class PickedOffsets:
    def __init__(self, *offsets: int) -> None:
        self.offsets = list(offsets)

    def randrange(self, start: int, stop: int) -> int:
        return self.offsets.pop(0)


class TestQemuApplianceHelpers:
    def test_an_offset_is_skipped_while_one_of_its_ports_is_taken(self):
        with socket.create_server(("127.0.0.1", 0)) as taken:
            port = taken.getsockname()[1]
            first, second = port - 7000, port - 7000 + 1
            assert free_offset([7000, 8443], rng=PickedOffsets(first, second)) == second  # type: ignore[arg-type]

    def test_no_free_range_is_an_error(self):
        with socket.create_server(("127.0.0.1", 0)) as taken:
            offset = taken.getsockname()[1] - 7000
            with pytest.raises(ApplianceError, match="no free port range"):
                free_offset([7000], rng=PickedOffsets(*[offset] * OFFSET_ATTEMPTS))  # type: ignore[arg-type]

    def test_the_test_root_is_read_from_the_console(self):
        pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"
        console = f"noise\r\n{ROOT_PEM_BEGIN}\r\n{pem.replace(chr(10), chr(13) + chr(10))}\r\n{ROOT_PEM_END}\r\nmore"
        assert simulator_root_from_console(console) == (pem + "\n").encode()
