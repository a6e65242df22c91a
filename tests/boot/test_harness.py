"""The QEMU harness itself, without booting (these run in `make test`)."""

import shutil

import pytest

from imagebuild import cpio, eif
from tests.boot.qemu import FORWARD_ADDRESS, BootImage, GuestForward, HostForward, Qemu, overlay_ramdisk

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

    def test_overlay_comes_after_the_image_ramdisks(self, tmp_path):
        path, ramdisks = eif_file(tmp_path)
        overlay = overlay_ramdisk({"testinit": b"#!/bin/sh\n", "etc/x.json": b"{}"}, executables=frozenset({"testinit"}))
        image = BootImage.from_eif(path).with_overlay(overlay, extra_cmdline="rdinit=/testinit")
        assert image.ramdisks == (*ramdisks, overlay)
        assert image.cmdline == "console=ttyS0 rdinit=/testinit"
        members = {member.path: member for member in cpio.read_cpio(overlay)}
        assert members["testinit"].mode & 0o111 and not members["etc/x.json"].mode & 0o111

    def test_archives_concatenate_on_four_byte_boundaries(self):
        # The kernel unpacks archives back to back only if each one ends 4-byte aligned.
        assert len(overlay_ramdisk({"a": b"odd"})) % 4 == 0


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
