"""Build `enclave.eif` and `pcrs.json` from the pinned inputs and a source checkout.

The result depends only on the lock file, the checkout's committed files and the builder's own code:
no clock, host name, user, umask, locale, time zone, directory order or current directory. What goes
into the application ramdisk is derived (contents.py): the project's modules that `python -m enclave`
imports, the locked wheels those imports need, and nothing else; then every module is imported with
the image's own interpreter before the EIF is written (smoke.py).

`committed_tree` hands the builder the files of HEAD (`git archive`), never the working tree: an
uncommitted change is not in the image, and the build says so.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from imagebuild import cpio, eif, kernel_build, pcr, rootfs
from imagebuild.contents import derive_contents, select_wheels, wheel_info
from imagebuild.debian import deb_entries
from imagebuild.errors import VerificationError
from imagebuild.lockfile import Lock, load_lock
from imagebuild.smoke import smoke_test
from imagebuild.sources import InputCache
from imagebuild.verify import export_checkout
from imagebuild.wheels import canonical_name, check_wheels_match_requirements, parse_requirements_lock, wheel_entries

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
BUILD_TOOL = "memwal-enclave imagebuild"
BUILD_TOOL_VERSION = "1"

Progress = Callable[[str], None]


@dataclass(frozen=True)
class BuildResult:
    eif_path: Path
    pcrs_path: Path
    measurements: pcr.Measurements
    eif_sha256: str
    eif_size: int
    ramdisk_sizes: tuple[int, ...]
    elapsed_seconds: float
    modules: tuple[str, ...] = ()  # the project's modules in the image
    wheels: tuple[str, ...] = ()  # the distributions in the image


@contextmanager
def committed_tree(repository: Path, *, progress: Progress = print) -> Iterator[Path]:
    """The files of HEAD in a scratch directory (a git checkout), or ``repository`` itself (a source tree).

    Uncommitted changes never reach the image: a dirty working tree is built from HEAD with a warning.
    """
    head = subprocess.run(["git", "-C", str(repository), "rev-parse", "--verify", "HEAD"], capture_output=True, text=True, check=False)
    inside = subprocess.run(
        ["git", "-C", str(repository), "rev-parse", "--show-toplevel"], capture_output=True, text=True, check=False
    )
    if head.returncode != 0 or Path(inside.stdout.strip() or "/nonexistent").resolve() != repository.resolve():
        progress(f"building from {repository} as it is (not a git checkout)")
        yield repository
        return
    status = subprocess.run(
        ["git", "-C", str(repository), "status", "--porcelain", "--untracked-files=normal"], capture_output=True, text=True, check=False
    )
    if status.returncode != 0:
        raise VerificationError(f"git status failed: {status.stderr.strip()}")
    progress(f"building from the committed tree: HEAD {head.stdout.strip()} (git archive; untracked and modified files are not used)")
    if status.stdout.strip():
        changed = len(status.stdout.strip().splitlines())
        progress(f"WARNING: {changed} uncommitted change(s) in {repository} are NOT in this image; commit them to include them")
    with tempfile.TemporaryDirectory(prefix="imagebuild-head-") as scratch:
        export_checkout(repository, Path(scratch), worktree=False)
        yield Path(scratch)


def metadata_json(lock: Lock, ramdisks: list[bytes]) -> bytes:
    """The EIF metadata section: fixed content derived from the inputs (not measured in any PCR)."""
    build_time = datetime.datetime.fromtimestamp(lock.source_date_epoch, tz=datetime.UTC)
    document = {
        "ImageName": lock.image_name,
        "ImageVersion": lock.sha256[:16],
        "BuildMetadata": {
            "BuildTime": build_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "BuildTool": BUILD_TOOL,
            "BuildToolVersion": BUILD_TOOL_VERSION,
            "OperatingSystem": "Linux",
            "KernelVersion": lock.kernel.release,
        },
        "DockerInfo": {},
        "CustomMetadata": {
            "InputsLockSha256": lock.sha256,
            "RamdiskSha256": [hashlib.sha256(ramdisk).hexdigest() for ramdisk in ramdisks],
        },
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".partial")
    temporary.write_bytes(data)
    os.chmod(temporary, 0o644)
    os.replace(temporary, path)


def build_image(*, checkout: Path, out: Path, cache: Path, lock: Lock | None = None, progress: Progress = print) -> BuildResult:
    started = time.monotonic()

    def step(message: str) -> None:
        progress(f"[{time.monotonic() - started:6.1f}s] {message}")

    lock = lock or load_lock(checkout / "imagebuild" / "inputs.lock.json")
    check_wheels_match_requirements(lock, parse_requirements_lock((checkout / "requirements.lock").read_text()))
    inputs = InputCache(cache, progress=step)

    step(f"kernel {lock.kernel.release} from {lock.kernel.deb.package} {lock.kernel.deb.version} + {lock.kernel.config_fragment}")
    kernel = kernel_build.build_kernel(lock, inputs, cache=cache, lock_directory=checkout / "imagebuild", progress=step)

    step(f"{len(lock.runtime_debs)} Debian runtime packages")
    debian = rootfs.debian_runtime([(deb.package, deb_entries(inputs.deb(lock, deb))) for deb in lock.runtime_debs])

    step("image contents: the modules `python -m enclave` imports, and the wheels they need")
    contents = derive_contents(checkout)
    wheel_files = inputs.wheels(lock.wheels)
    infos = [wheel_info(w.filename, wheel_files[w.filename]) for w in lock.wheels]
    needed = select_wheels(contents.external_imports, infos, unused=lock.unused_dependencies)
    installed = [wheel for wheel in lock.wheels if canonical_name(wheel.name) in needed]
    left_out = sorted(canonical_name(wheel.name) for wheel in lock.wheels if canonical_name(wheel.name) not in needed)
    step(f"{len(contents.modules)} modules of ours, {len(installed)} of {len(lock.wheels)} wheels (not needed: {', '.join(left_out) or 'none'})")
    site_packages = rootfs.site_packages(
        [entry for wheel in installed for entry in wheel_entries(wheel_files[wheel.filename], prefix=rootfs.SITE_PACKAGES_PREFIX)]
    )
    sources = rootfs.application_sources(checkout, contents.files)

    bootstrap = rootfs.bootstrap_entries()
    application = rootfs.application_entries(debian=debian, wheels=site_packages, sources=sources)
    rootfs.check_disjoint(bootstrap, application)
    step("smoke test: import every module with the image's own interpreter (chroot, no network)")
    imported = smoke_test(application, contents.modules, entry_points=[m for m in contents.modules if m.endswith(".__main__")])
    step(f"smoke test: {imported} modules import")
    step(f"writing cpio archives ({len(bootstrap)} + {len(application)} entries)")
    ramdisks = [cpio.write_cpio(bootstrap, mtime=lock.source_date_epoch), cpio.write_cpio(application, mtime=lock.source_date_epoch)]

    step("writing EIF")
    image = eif.build_image(kernel=kernel.bzimage, cmdline=lock.cmdline, ramdisks=ramdisks, metadata=metadata_json(lock, ramdisks))
    raw = eif.serialize(image)
    measurements = pcr.measure(image)
    eif_path, pcrs_path = out / "enclave.eif", out / "pcrs.json"
    _write_atomically(eif_path, raw)
    _write_atomically(pcrs_path, measurements.to_json().encode())
    return BuildResult(
        eif_path=eif_path, pcrs_path=pcrs_path, measurements=measurements, eif_sha256=hashlib.sha256(raw).hexdigest(),
        eif_size=len(raw), ramdisk_sizes=tuple(len(ramdisk) for ramdisk in ramdisks), elapsed_seconds=time.monotonic() - started,
        modules=contents.modules, wheels=tuple(sorted(needed)),
    )
