import lzma

import pytest

from imagebuild.cpio import CpioEntry
from imagebuild.errors import RootfsError
from imagebuild.kernel import kernel_parts, load_order, modinfo_field
from imagebuild.lockfile import load_lock

RELEASE = load_lock().kernel.release


def module(depends: str, release: str = RELEASE) -> bytes:
    return b"\x7fELF...\0license=GPL\0depends=" + depends.encode() + b"\0vermagic=" + release.encode() + b" SMP mod_unload \0"


class TestModinfo:
    def test_fields(self):
        assert modinfo_field(module("vsock"), "depends") == "vsock"
        assert modinfo_field(module(""), "depends") == ""
        assert modinfo_field(b"nothing", "depends") is None


class TestLoadOrder:
    def test_dependencies_first(self):
        available = {"transport": module("common,vsock"), "common": module("vsock"), "vsock": module("")}
        assert [item.name for item in load_order(("transport",), available)] == ["vsock", "common", "transport"]

    def test_cycle_rejected(self):
        with pytest.raises(RootfsError, match="dependency cycle"):
            load_order(("a",), {"a": module("b"), "b": module("a")})

    def test_missing_rejected(self):
        with pytest.raises(RootfsError, match="kernel module nope is not in the kernel package"):
            load_order(("nope",), {})


class TestKernelParts:
    def entries(self, release: str = RELEASE) -> list[CpioEntry]:
        base = f"usr/lib/modules/{RELEASE}/kernel"
        names = {"virtio_mmio": "", "nsm": "", "vsock": "", "vmw_vsock_virtio_transport_common": "vsock",
                 "vmw_vsock_virtio_transport": "vmw_vsock_virtio_transport_common,vsock"}
        files = [CpioEntry.file(f"boot/vmlinuz-{RELEASE}", b"\0" * 0x202 + b"HdrS")]
        files += [CpioEntry.file(f"{base}/drivers/{name}.ko.xz", lzma.compress(module(deps, release))) for name, deps in names.items()]
        return files

    def test_decompressed_in_order(self):
        parts = kernel_parts(self.entries(), load_lock().kernel)
        assert [item.name for item in parts.modules][-1] == "vmw_vsock_virtio_transport"
        assert parts.modules[0].data.startswith(b"\x7fELF")

    def test_wrong_vermagic_rejected(self):
        with pytest.raises(RootfsError, match="was built for '6.0.0'"):
            kernel_parts(self.entries(release="6.0.0"), load_lock().kernel)

    def test_not_a_bzimage(self):
        entries = [CpioEntry.file(f"boot/vmlinuz-{RELEASE}", b"plain")]
        with pytest.raises(RootfsError, match="not a bzImage"):
            kernel_parts(entries, load_lock().kernel)
