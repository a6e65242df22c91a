"""Build-time smoke test: import every module of the image with the image's own interpreter, offline.

The application ramdisk is unpacked into a scratch directory and ``/usr/bin/python3.11 -I`` from it runs
under ``chroot`` in a new network namespace with no interface up (``unshare --net --map-root-user``, so it
works as root and, where user namespaces are allowed, without). Nothing of the build machine's Python,
libraries or network is visible. Each of the project's modules is imported (``__main__`` modules are run
only with ``--help``), so a module the import walk missed, a wheel that lacks a dependency, or a shared
library the Debian inputs do not provide fails the build here instead of at boot. ``SELF_CHECKS`` then
run in full (the embedding model: its data files are in the image and it works without a network).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from imagebuild.cpio import CpioEntry, EntryKind, sorted_entries
from imagebuild.errors import RootfsError
from imagebuild.rootfs import APPLICATION_PREFIX, SITE_PACKAGES_PREFIX

INTERPRETER = "/usr/bin/python3.11"
SMOKE_TIMEOUT_SECONDS = 300
# Modules whose ``python -m`` run checks more than imports, in the image, offline; exit 0 = works.
SELF_CHECKS = {
    "relayer.local_embeddings": "the in-enclave embedding model loads from its pinned files and reproduces published vectors",
}
# Run as a script inside the chroot: import each module, report failures as JSON on stdout.
_PROBE = """
import importlib, json, sys, traceback
sys.path[:0] = [{app!r}, {site!r}]
failures = {{}}
for name in {modules!r}:
    try:
        importlib.import_module(name)
    except BaseException as error:
        failures[name] = "".join(traceback.format_exception_only(type(error), error)).strip()
print(json.dumps({{"imported": len({modules!r}) - len(failures), "failures": failures}}))
"""


def unpack(entries: Iterable[CpioEntry], root: Path) -> None:
    """Write the archive's entries under ``root`` (directories, files with their mode, symlinks)."""
    for entry in sorted_entries(list(entries)):
        target = root / entry.path
        if entry.kind is EntryKind.DIRECTORY:
            target.mkdir(parents=True, exist_ok=True)
        elif entry.kind is EntryKind.SYMLINK:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(entry.data.decode())
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(entry.data)
            target.chmod(0o755 if entry.executable else 0o644)


def isolated_command(root: Path, argv: list[str]) -> list[str]:
    unshare = shutil.which("unshare")
    chroot = shutil.which("chroot")
    if unshare is None or chroot is None:
        raise RootfsError("the import smoke test needs unshare and chroot (util-linux, coreutils)")
    return [unshare, "--net", "--map-root-user", chroot, str(root), *argv]


def run_isolated(root: Path, argv: list[str]) -> subprocess.CompletedProcess[str]:
    environment = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/root"}
    try:
        return subprocess.run(
            isolated_command(root, argv), capture_output=True, text=True, env=environment, timeout=SMOKE_TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired as error:
        raise RootfsError(f"the import smoke test did not finish within {SMOKE_TIMEOUT_SECONDS} s") from error


def smoke_test(
    application: list[CpioEntry], modules: Iterable[str], *, entry_points: Iterable[str], self_checks: Mapping[str, str] = SELF_CHECKS
) -> int:
    """Import ``modules``, run ``python -m <entry> --help`` and each self-check in the unpacked image; returns how
    many modules imported. A self-check's module must be among ``modules``: a check that silently did not run
    would prove nothing."""
    importable = sorted(module for module in modules if not module.endswith(".__main__"))
    missing = sorted(set(self_checks) - set(importable))
    if missing:
        raise RootfsError(f"the image lacks the self-checked module(s) {', '.join(missing)}")
    with tempfile.TemporaryDirectory(prefix="imagebuild-smoke-") as scratch:
        root = Path(scratch)
        unpack(application, root)
        for mount_point in ("tmp", "root", "dev", "proc"):
            (root / mount_point).mkdir(exist_ok=True, mode=0o700)
        probe = _PROBE.format(app=f"/{APPLICATION_PREFIX}", site=f"/{SITE_PACKAGES_PREFIX}", modules=importable)
        result = run_isolated(root, [INTERPRETER, "-I", "-c", probe])
        if result.returncode != 0:
            raise RootfsError(f"the image's interpreter failed in the smoke test: {(result.stderr or result.stdout).strip()[-2000:]}")
        report = json.loads(result.stdout.strip().splitlines()[-1])
        if report["failures"]:
            lines = "\n".join(f"  {name}: {error}" for name, error in sorted(report["failures"].items()))
            raise RootfsError(f"{len(report['failures'])} module(s) of the image do not import with its own interpreter:\n{lines}")
        for entry in entry_points:
            package = entry.removesuffix(".__main__")
            command = [INTERPRETER, "-I", "-c", f"import runpy, sys; sys.path[:0] = ['/{APPLICATION_PREFIX}', '/{SITE_PACKAGES_PREFIX}']; "
                       f"sys.argv = ['{package}', '--help']; runpy.run_module('{package}', run_name='__main__')"]  # fmt: skip
            result = run_isolated(root, command)
            if result.returncode != 0 or "usage:" not in result.stdout:
                raise RootfsError(f"python -m {package} --help failed in the image: {(result.stderr or result.stdout).strip()[-2000:]}")
        for module, what in self_checks.items():
            command = [INTERPRETER, "-I", "-c", f"import runpy, sys; sys.path[:0] = ['/{APPLICATION_PREFIX}', '/{SITE_PACKAGES_PREFIX}']; "
                       f"sys.argv = ['{module}']; runpy.run_module('{module}', run_name='__main__')"]  # fmt: skip
            result = run_isolated(root, command)
            if result.returncode != 0:
                raise RootfsError(f"python -m {module} ({what}) failed in the image: {(result.stderr or result.stdout).strip()[-2000:]}")
        return int(report["imported"])
