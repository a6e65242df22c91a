"""The test EIF and its guest init, without booting (these run in `make test`)."""

import ast
import json

import pytest

from imagebuild import cpio, eif, pcr
from imagebuild.contents import derive_contents
from imagebuild.rootfs import APPLICATION_PREFIX
from tests.boot import guest_init, qemu
from tests.boot.overlay import GUEST_INIT, REPOSITORY, TEST_CMDLINE_ADDITIONS, OverlayError, build_test_image

KERNEL = b"\0" * 0x202 + b"HdrS"
DEV_ONLY = {"devtools", "devtools.simulated_enclave", "attestation.simulator", "attestation.testing"}


def production_image(*, leave_out: str = "") -> eif.EnclaveImage:
    """A stand-in for the production EIF whose application ramdisk lists the image's real module paths."""
    files = [relative for relative in derive_contents(REPOSITORY).files if relative != leave_out]
    application = cpio.write_cpio([cpio.CpioEntry.file(f"{APPLICATION_PREFIX}/{path}", b"# stand-in\n") for path in files], mtime=1)
    bootstrap = cpio.write_cpio([cpio.CpioEntry.file("init", b"#!/usr/bin/python3.11 -I\n", executable=True)], mtime=1)
    return eif.build_image(kernel=KERNEL, cmdline="console=ttyS0", ramdisks=[bootstrap, application], metadata=b"{}")


class TestTestImage:
    def test_only_the_bootstrap_measurement_changes(self):
        production = production_image()
        built = build_test_image(production)
        before, after = pcr.measure(production), built.measurements
        assert after.pcr2 == before.pcr2
        assert after.pcr1 != before.pcr1 and after.pcr0 != before.pcr0
        assert built.image.ramdisks == [production.ramdisks[0] + built.overlay, production.ramdisks[1]]
        assert built.image.cmdline == f"console=ttyS0 {TEST_CMDLINE_ADDITIONS}".encode()
        assert pcr.measure(eif.parse(built.eif_bytes)) == after

    def test_the_overlay_holds_the_test_init_and_the_dev_only_modules(self):
        built = build_test_image(production_image())
        assert set(built.overlay_modules) == DEV_ONLY
        members = {member.path: member for member in cpio.read_cpio(built.overlay)}
        assert members["testinit"].data == GUEST_INIT.read_bytes() and members["testinit"].mode & 0o111
        assert f"{APPLICATION_PREFIX}/attestation/simulator.py" in members
        assert f"{APPLICATION_PREFIX}/enclave/boot.py" not in members  # the image's own copy runs

    def test_the_same_inputs_give_the_same_test_eif(self):
        assert build_test_image(production_image()).eif_bytes == build_test_image(production_image()).eif_bytes

    def test_refuses_to_carry_a_module_the_image_should_hold(self):
        with pytest.raises(OverlayError, match="enclave.command, which the image does not forbid"):
            build_test_image(production_image(leave_out="enclave/command.py"))


class TestGuestInit:
    def test_standalone_on_the_image_interpreter(self):
        tree = ast.parse(GUEST_INIT.read_text())
        imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        assert imported <= {"__future__", "ctypes", "importlib", "json", "os", "pkgutil", "socket", "sys", "traceback", "types"}
        assert GUEST_INIT.read_text().startswith("#!/usr/bin/python3.11 -I\n")

    def test_dials_where_the_harness_forwards(self):
        assert guest_init.FORWARD_ADDRESS == qemu.FORWARD_ADDRESS
        arguments = guest_init.runtime_arguments("/usr/bin/python3.11")
        assert arguments[:3] == ["/usr/bin/python3.11", "-m", "devtools.simulated_enclave"]
        assert arguments[arguments.index("--transport") + 1] == f"tcp:{qemu.FORWARD_ADDRESS}"

    def test_measurements_are_read_strictly(self):
        good = {f"PCR{index}": "ab" * 48 for index in range(3)}
        assert guest_init.parse_measurements(json.dumps(good).encode()) == good
        for bad, match in [
            ({**good, "PCR16": "00" * 48}, "exactly PCR0, PCR1, PCR2"),
            ({"PCR0": "ab" * 48}, "exactly"),
            ({**good, "PCR1": "AB" * 48}, "PCR1 is not 96 lowercase hex"),
            ({**good, "PCR2": "ab" * 47}, "PCR2 is not 96"),
            ([1, 2], "exactly"),
        ]:
            with pytest.raises(ValueError, match=match):
                guest_init.parse_measurements(json.dumps(bad).encode())
        with pytest.raises(ValueError, match="larger than"):
            guest_init.parse_measurements(b" " * (guest_init.MAX_MEASUREMENTS_BYTES + 1))
