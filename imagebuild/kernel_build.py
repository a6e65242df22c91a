"""Build the enclave kernel (bzImage) from the pinned Debian source package, reproducibly and cached.

Steps, each of which refuses with a clear message:

    (1) the cache: `cache/kernel/<key>/` holds a bzImage built from exactly these inputs (the key hashes the
        source .deb's SHA-256, the config fragment, the toolchain pins, the build identity and this code)
    (2) the toolchain: every pinned Debian package (gcc-12, binutils, ...) is installed at its exact version
    (3) the source: the `linux-source-6.12` .deb (checked by SHA-256) is unpacked into a scratch tree
    (4) the config: `make tinyconfig`, the fragment merged over it, `make olddefconfig`, and every fragment
        option must still have its requested value
    (5) the build: `make bzImage` in a fixed environment (KBUILD_BUILD_TIMESTAMP with an explicit UTC zone,
        USER, HOST, VERSION; LC_ALL=C, TZ=UTC), with a progress line every few seconds
    (6) the result: the release string must be the pinned one and the file a bzImage; it goes into the cache
        and the scratch tree is removed
"""

from __future__ import annotations

import collections
import contextlib
import datetime
import fcntl
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from imagebuild import kernel_config
from imagebuild.debian import ar_members
from imagebuild.errors import KernelBuildError
from imagebuild.lockfile import Kernel, Lock
from imagebuild.sources import InputCache

KERNEL_DIRECTORY = Path(__file__).parent
# The code that decides what the kernel build does: a change to either invalidates cached kernels.
RECIPE_FILES = (Path(__file__), KERNEL_DIRECTORY / "kernel_config.py")
BZIMAGE_PATH = "arch/x86/boot/bzImage"
MAX_BZIMAGE_BYTES = 64 * 1024**2
MAX_TARBALL_BYTES = 512 * 1024**2
PROGRESS_INTERVAL_SECONDS = 15.0
LOG_TAIL_LINES = 40
BUILD_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
# The compiler is named explicitly so the `gcc` alternative on the machine does not matter.
MAKE_VARIABLES = ("ARCH=x86_64", "CC=gcc-12", "HOSTCC=gcc-12")

Progress = Callable[[str], None]


@dataclass(frozen=True)
class BuiltKernel:
    bzimage: bytes
    config: str  # the final .config
    cache_key: str
    from_cache: bool


def build_timestamp(source_date_epoch: int) -> str:
    """`date`-style text with an explicit zone: gen_initramfs.sh parses it with `date -d`, and a zone-less
    date would be read in the builder's TZ (the built-in initramfs mtimes then differ between machines)."""
    moment = datetime.datetime.fromtimestamp(source_date_epoch, tz=datetime.UTC)
    return moment.strftime("%a %b %e %H:%M:%S UTC %Y")


def build_environment(kernel: Kernel, source_date_epoch: int, home: Path) -> dict[str, str]:
    """The whole environment of every make call; nothing is inherited from the caller."""
    return {
        "PATH": BUILD_PATH,
        "HOME": str(home),
        "LC_ALL": "C",
        "TZ": "UTC",
        "SOURCE_DATE_EPOCH": str(source_date_epoch),
        "KBUILD_BUILD_TIMESTAMP": build_timestamp(source_date_epoch),
        "KBUILD_BUILD_USER": kernel.build_user,
        "KBUILD_BUILD_HOST": kernel.build_host,
        "KBUILD_BUILD_VERSION": "1",
        "LOCALVERSION": "",  # set (even empty): scripts/setlocalversion then never appends "+" or a git hash
    }


def fragment_text(kernel: Kernel, directory: Path | None = None) -> str:
    """The fragment named by the lock, next to the lock in `directory` (default: this package's directory)."""
    try:
        return ((directory or KERNEL_DIRECTORY) / kernel.config_fragment).read_text(encoding="utf-8")
    except OSError as error:
        raise KernelBuildError(f"cannot read the kernel config fragment {kernel.config_fragment}: {error.strerror}") from error


def cache_key(lock: Lock, fragment: str) -> str:
    """SHA-256 over everything the bzImage depends on."""
    kernel = lock.kernel
    recipe = {
        "source_deb_sha256": kernel.deb.sha256,
        "source_tarball": kernel.source_tarball,
        "release": kernel.release,
        "fragment_sha256": hashlib.sha256(fragment.encode()).hexdigest(),
        "toolchain": kernel.toolchain,
        "environment": build_environment(kernel, lock.source_date_epoch, Path("/")) | {"HOME": ""},
        "make_variables": MAKE_VARIABLES,
        "recipe_sha256": [hashlib.sha256(path.read_bytes()).hexdigest() for path in RECIPE_FILES],
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


# (1) the cache ------------------------------------------------------------------------------------------


def _cached(directory: Path, key: str) -> BuiltKernel | None:
    try:
        info = json.loads((directory / "build-info.json").read_text())
        bzimage = (directory / "bzImage").read_bytes()
        config = (directory / "config").read_text()
    except (OSError, ValueError):
        return None
    if info.get("bzimage_sha256") != hashlib.sha256(bzimage).hexdigest():
        return None  # a damaged cache entry is rebuilt, never used
    return BuiltKernel(bzimage, config, key, from_cache=True)


def _store(directory: Path, built: BuiltKernel, seconds: float) -> None:
    partial = directory.with_name(directory.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    (partial / "bzImage").write_bytes(built.bzimage)
    (partial / "config").write_text(built.config)
    info = {"bzimage_sha256": hashlib.sha256(built.bzimage).hexdigest(), "bzimage_bytes": len(built.bzimage), "build_seconds": round(seconds)}
    (partial / "build-info.json").write_text(json.dumps(info, indent=2) + "\n")
    shutil.rmtree(directory, ignore_errors=True)
    os.replace(partial, directory)


@contextlib.contextmanager
def _exclusive(lock_file: Path, progress: Progress) -> Iterator[None]:
    """One builder per cache key at a time: a second one waits, then finds the first one's result."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress("  another process is building the same kernel; waiting for it")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


# (2) the toolchain --------------------------------------------------------------------------------------


def installed_versions(packages: list[str]) -> dict[str, str]:
    """Package -> installed version, from dpkg; packages that are not installed are absent."""
    result = subprocess.run(
        ["dpkg-query", "--show", "--showformat=${Package}\\t${db:Status-Abbrev}\\t${Version}\\n", *packages],
        capture_output=True, text=True, check=False,
    )
    versions = {}
    for line in result.stdout.splitlines():
        name, status, version = (line.split("\t") + ["", ""])[:3]
        if status.strip() == "ii":
            versions[name.split(":")[0]] = version
    return versions


def toolchain_problems(pinned: dict[str, str], installed: dict[str, str]) -> list[str]:
    return [
        f"{name}: pinned {version}, installed {installed.get(name, '(not installed)')}"
        for name, version in pinned.items()
        if installed.get(name) != version
    ]


def check_toolchain(kernel: Kernel) -> None:
    if shutil.which("dpkg-query") is None:
        raise KernelBuildError("the kernel is built with Debian 12's toolchain, and dpkg-query is not available (not a Debian machine?)")
    problems = toolchain_problems(kernel.toolchain, installed_versions(list(kernel.toolchain)))
    if problems:
        raise KernelBuildError(
            "the kernel toolchain differs from the pinned one, so the bzImage would not be reproducible:\n  "
            + "\n  ".join(problems)
            + "\ninstall exactly these versions (scripts/system-deps.sh installs the packages), or update the "
            "`toolchain` pins in imagebuild/inputs.lock.json and publish the new PCRs"
        )


# (3) the source -----------------------------------------------------------------------------------------


def extract_source(deb: bytes, tarball: str, destination: Path) -> Path:
    """Unpack the kernel tarball shipped inside the source .deb; return the top directory of the tree."""
    members = ar_members(deb)
    data = members.get("data.tar.xz")
    if data is None:
        raise KernelBuildError(f"the kernel source .deb has no data.tar.xz (members: {sorted(members)})")
    tarball_file = destination / "linux-source.tar.xz"
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:xz") as outer:
        for member in outer:
            if member.name.removeprefix("./") == tarball and member.isfile():
                if member.size > MAX_TARBALL_BYTES:
                    raise KernelBuildError(f"{tarball} is larger than {MAX_TARBALL_BYTES} bytes")
                source = outer.extractfile(member)
                if source is None:
                    break
                with open(tarball_file, "wb") as sink:
                    shutil.copyfileobj(source, sink, length=1024**2)
                break
        else:
            raise KernelBuildError(f"{tarball} is not in the kernel source .deb")
    tree = destination / "tree"
    tree.mkdir()
    # System tar unpacks the ~90,000 files several times faster than tarfile; file contents do not depend on it.
    result = subprocess.run(
        ["tar", "--extract", "--xz", "--file", str(tarball_file), "--directory", str(tree), "--no-same-owner", "--strip-components=1"],
        capture_output=True, text=True, check=False,
    )
    tarball_file.unlink()
    if result.returncode != 0:
        raise KernelBuildError(f"cannot unpack {tarball}: {result.stderr.strip()[-500:]}")
    if not (tree / "Makefile").is_file():
        raise KernelBuildError(f"{tarball} does not contain a kernel tree (no top-level Makefile)")
    return tree


# (4) and (5) config and build ---------------------------------------------------------------------------


def _make(tree: Path, environment: dict[str, str], targets: list[str], *, log: Path, progress: Progress, label: str) -> None:
    """Run make, writing every line to `log` and a progress line every PROGRESS_INTERVAL_SECONDS."""
    command = ["make", f"-j{len(os.sched_getaffinity(0))}", *MAKE_VARIABLES, *targets]
    started = last_report = time.monotonic()
    steps, tail = 0, collections.deque[str](maxlen=LOG_TAIL_LINES)
    with open(log, "a", encoding="utf-8") as log_file:
        log_file.write(f"$ {' '.join(command)}\n")
        process = subprocess.Popen(
            command, cwd=tree, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
        )
        for line in process.stdout or ():
            log_file.write(line)
            tail.append(line.rstrip())
            if line.startswith("  ") and line[2:10].strip().isupper():
                steps += 1
            now = time.monotonic()
            if now - last_report >= PROGRESS_INTERVAL_SECONDS:
                last_report = now
                progress(f"  kernel {label}: {steps} steps in {now - started:.0f} s (last: {line.strip()[:70]})")
        code = process.wait()
    if code != 0:
        raise KernelBuildError(f"`make {' '.join(targets)}` failed with exit code {code}; last lines:\n" + "\n".join(tail) + f"\n(full log: {log})")


def configure(tree: Path, fragment: dict[str, str], environment: dict[str, str], *, log: Path, progress: Progress) -> str:
    _make(tree, environment, ["tinyconfig"], log=log, progress=progress, label="tinyconfig")
    config_file = tree / ".config"
    config_file.write_text(kernel_config.merge_fragment(config_file.read_text(), fragment))
    _make(tree, environment, ["olddefconfig"], log=log, progress=progress, label="olddefconfig")
    final = config_file.read_text()
    lost = kernel_config.lost_options(fragment, kernel_config.parse_config(final, strict=False))
    if lost:
        raise KernelBuildError(
            "`make olddefconfig` did not keep these options of the config fragment:\n  " + "\n  ".join(map(str, lost))
            + "\nfix imagebuild/kernel.config (add the missing dependency, or drop the option with a reason)"
        )
    return final


def check_bzimage(bzimage: bytes) -> None:
    if len(bzimage) > MAX_BZIMAGE_BYTES:
        raise KernelBuildError(f"bzImage of {len(bzimage)} bytes exceeds {MAX_BZIMAGE_BYTES}")
    if bzimage[0x202:0x206] != b"HdrS":
        raise KernelBuildError("the kernel is not a bzImage (no HdrS boot header)")


def build_kernel(
    lock: Lock, inputs: InputCache, *, cache: Path, lock_directory: Path | None = None, progress: Progress = print
) -> BuiltKernel:
    """The bzImage for `lock`, whose config fragment sits in `lock_directory` (the checkout's imagebuild/)."""
    kernel = lock.kernel
    text = fragment_text(kernel, lock_directory)
    key = cache_key(lock, text)
    directory = cache / "kernel" / key
    with _exclusive(cache / "kernel" / f"{key}.lock", progress):
        # (1):
        cached = _cached(directory, key)
        if cached is not None:
            progress(f"  kernel {kernel.release} from the cache ({key[:16]}, {len(cached.bzimage) / 1024**2:.1f} MiB)")
            return cached
        return _build(lock, inputs, text=text, key=key, directory=directory, progress=progress)


def _build(lock: Lock, inputs: InputCache, *, text: str, key: str, directory: Path, progress: Progress) -> BuiltKernel:
    kernel = lock.kernel
    # (2):
    check_toolchain(kernel)
    fragment = kernel_config.parse_config(text, strict=True)
    started = time.monotonic()
    scratch = directory.with_name(f"{key}.build")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    log = scratch / "build.log"
    # (3):
    progress(f"  kernel {kernel.release}: unpacking {kernel.deb.package} {kernel.deb.version} (a cold build takes several minutes)")
    tree = extract_source(inputs.deb(lock, kernel.deb), kernel.source_tarball, scratch)
    environment = build_environment(kernel, lock.source_date_epoch, scratch)
    # (4):
    config = configure(tree, fragment, environment, log=log, progress=progress)
    progress(f"  kernel config: {len(fragment)} fragment options kept by olddefconfig; building bzImage")
    # (5):
    _make(tree, environment, ["bzImage"], log=log, progress=progress, label="bzImage")
    # (6):
    release = (tree / "include" / "config" / "kernel.release").read_text().strip()
    if release != kernel.release:
        raise KernelBuildError(f"the source built kernel release {release!r}, but the lock pins {kernel.release!r}")
    bzimage = (tree / BZIMAGE_PATH).read_bytes()
    check_bzimage(bzimage)
    built = BuiltKernel(bzimage, config, key, from_cache=False)
    seconds = time.monotonic() - started
    _store(directory, built, seconds)
    shutil.rmtree(scratch, ignore_errors=True)
    progress(f"  kernel {release} built in {seconds:.0f} s: {len(bzimage) / 1024**2:.2f} MiB bzImage, sha256 {hashlib.sha256(bzimage).hexdigest()[:16]}")
    return built
