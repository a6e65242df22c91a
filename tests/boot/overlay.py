"""The test EIF of the full QEMU test boot: the production EIF plus a test overlay and a test command line.

    build_test_image(production) -> TestImage: the test EIF, its PCRs, and what the overlay holds

What changes, and in which measurement (imagebuild/pcr.py: PCR1 = kernel ‖ cmdline ‖ ramdisk[0],
PCR2 = ramdisk[1:], PCR0 = all of them):

    kernel          the production bzImage, unchanged
    cmdline         production + TEST_CMDLINE_ADDITIONS                                   (PCR0, PCR1)
    ramdisk[0]      production bootstrap ‖ the test overlay (one more newc archive)       (PCR0, PCR1)
    ramdisk[1]      the production application ramdisk, byte for byte                     (PCR2 identical)

The kernel unpacks the archives in order (bootstrap, overlay, application), so the overlay may only add
paths the application ramdisk does not hold (checked): the test boot runs the production code. The
overlay holds /testinit (tests/boot/guest_init.py) and the dev-only modules of the simulated entry
point (``python -m devtools.simulated_enclave``: the NSM simulator, the test PKI), derived from its
imports the way imagebuild/contents.py derives the image, minus everything already in the image.
Nothing in it may be part of the production image, and nothing of it is (contents.FORBIDDEN).

The overlay holds nothing that changes from run to run (ports and PCRs reach the guest over QEMU
forwards), so the test EIF and its PCRs depend only on the production EIF and this checkout.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from imagebuild import cpio, eif, pcr
from imagebuild.contents import FORBIDDEN, derive_contents, module_path
from imagebuild.rootfs import APPLICATION_PREFIX
from tests.boot import guest_init
from tests.boot.qemu import KERNEL_IP_ARGUMENT

REPOSITORY = Path(__file__).resolve().parents[2]
GUEST_INIT = Path(guest_init.__file__)
TEST_INIT_PATH = "testinit"
# rdinit: the kernel starts /testinit instead of /init; ip=: eth0's static address (the kernel's IP_PNP).
TEST_CMDLINE_ADDITIONS = f"rdinit=/{TEST_INIT_PATH} {KERNEL_IP_ARGUMENT}"
OVERLAY_ENTRY = guest_init.RUNTIME_MODULE
# What even the overlay must not reach: the simulated entry point needs none of it.
OVERLAY_FORBIDDEN = {name: why for name, why in FORBIDDEN.items() if name in ("localnet", "bench", "tests", "imagebuild")}
OVERLAY_MTIME = 1


class OverlayError(AssertionError):
    """The overlay would replace production files or carry something it must not."""


@dataclass(frozen=True)
class TestImage:
    eif_bytes: bytes
    image: eif.EnclaveImage
    measurements: pcr.Measurements
    overlay: bytes
    overlay_modules: tuple[str, ...]  # the dev-only modules the overlay adds
    overlay_paths: tuple[str, ...]  # every file path in the overlay

    __test__ = False  # not a pytest class


def dev_only_files(checkout: Path, shipped: frozenset[str]) -> tuple[dict[str, bytes], tuple[str, ...]]:
    """(guest path -> bytes, modules): what ``python -m devtools.simulated_enclave`` imports beyond ``shipped``."""
    walked = derive_contents(checkout, (OVERLAY_ENTRY,), forbidden=OVERLAY_FORBIDDEN)
    files, modules = {}, []
    for module in walked.modules:
        path = module_path(checkout, module)
        assert path is not None  # derive_contents found it
        relative = path.relative_to(checkout).as_posix()
        if f"{APPLICATION_PREFIX}/{relative}" in shipped:
            continue
        if not any(module == name or module.startswith(name + ".") for name in FORBIDDEN):
            raise OverlayError(f"the overlay would carry {module}, which the image does not forbid: the image should hold it")
        files[f"{APPLICATION_PREFIX}/{relative}"] = path.read_bytes()
        modules.append(module)
    return files, tuple(modules)


def build_test_image(production: eif.EnclaveImage, *, checkout: Path = REPOSITORY) -> TestImage:
    bootstrap, application = production.ramdisks
    shipped = frozenset(member.path for member in cpio.read_cpio(application))
    files, modules = dev_only_files(checkout, shipped)
    files[TEST_INIT_PATH] = GUEST_INIT.read_bytes()
    overlay = cpio.write_cpio(
        [cpio.CpioEntry.file(path, data, executable=path == TEST_INIT_PATH) for path, data in files.items()], mtime=OVERLAY_MTIME
    )
    cmdline = f"{production.cmdline.decode()} {TEST_CMDLINE_ADDITIONS}"
    metadata = production.of_type(eif.SectionType.METADATA)[0]
    image = eif.build_image(kernel=production.kernel, cmdline=cmdline, ramdisks=[bootstrap + overlay, application], metadata=metadata)
    return TestImage(
        eif_bytes=eif.serialize(image), image=image, measurements=pcr.measure(image), overlay=overlay,
        overlay_modules=modules, overlay_paths=tuple(sorted(files)),
    )  # fmt: skip
