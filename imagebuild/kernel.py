"""Take the bzImage and the few kernel modules the enclave needs out of the Debian kernel package.

Modules are shipped xz-compressed; they are decompressed here (decompression is deterministic) so
/init can hand them straight to finit_module(2). Load order comes from each module's own
`depends=` modinfo field, so a dependency is always loaded before its users.
"""

from __future__ import annotations

import lzma
import re
from dataclasses import dataclass

from imagebuild.cpio import CpioEntry, EntryKind
from imagebuild.errors import RootfsError
from imagebuild.lockfile import Kernel

MAX_MODULE_BYTES = 16 * 1024**2
_MODULE_FILE = re.compile(r"^(?:usr/)?lib/modules/(?P<release>[^/]+)/kernel/.+/(?P<name>[^/]+)\.ko(?P<xz>\.xz)?$")


@dataclass(frozen=True)
class KernelModule:
    name: str
    data: bytes
    depends: tuple[str, ...]


@dataclass(frozen=True)
class KernelParts:
    bzimage: bytes
    modules: tuple[KernelModule, ...]  # in load order


def module_name(name: str) -> str:
    return name.replace("-", "_")


def modinfo_field(module: bytes, field: str) -> str | None:
    """Value of `field=` in the NUL-separated .modinfo strings, without a full ELF parse."""
    match = re.search(rb"(?:^|\0)" + re.escape(field.encode()) + rb"=([^\0]*)\0", module)
    return match.group(1).decode() if match else None


def _decompress(data: bytes, path: str) -> bytes:
    try:
        decompressor = lzma.LZMADecompressor()
        result = decompressor.decompress(data, max_length=MAX_MODULE_BYTES + 1)
    except lzma.LZMAError as error:
        raise RootfsError(f"cannot decompress {path}: {error}") from error
    if len(result) > MAX_MODULE_BYTES or not decompressor.eof:
        raise RootfsError(f"{path} decompresses to more than {MAX_MODULE_BYTES} bytes")
    return result


def load_order(wanted: tuple[str, ...], available: dict[str, bytes]) -> tuple[KernelModule, ...]:
    ordered: list[KernelModule] = []
    visiting: set[str] = set()
    done: set[str] = set()

    def visit(name: str) -> None:
        if name in done:
            return
        if name in visiting:
            raise RootfsError(f"kernel module dependency cycle through {name}")
        if name not in available:
            raise RootfsError(f"kernel module {name} is not in the kernel package")
        visiting.add(name)
        depends = tuple(module_name(item) for item in (modinfo_field(available[name], "depends") or "").split(",") if item)
        for dependency in depends:
            visit(dependency)
        visiting.discard(name)
        done.add(name)
        ordered.append(KernelModule(name, available[name], depends))

    for name in wanted:
        visit(module_name(name))
    return tuple(ordered)


def kernel_parts(entries: list[CpioEntry], kernel: Kernel) -> KernelParts:
    files = {entry.path: entry.data for entry in entries if entry.kind is EntryKind.FILE}
    bzimage = files.get(f"boot/vmlinuz-{kernel.release}")
    if bzimage is None:
        raise RootfsError(f"boot/vmlinuz-{kernel.release} is not in {kernel.deb.package}")
    if bzimage[0x202:0x206] != b"HdrS":
        raise RootfsError("the kernel is not a bzImage (no HdrS boot header)")
    available: dict[str, tuple[str, bytes]] = {}
    for path, data in files.items():
        match = _MODULE_FILE.match(path)
        if match is not None and match.group("release") == kernel.release:
            available[module_name(match.group("name"))] = (path, data)
    # Decompress only the wanted modules and their transitive dependencies.
    needed: dict[str, bytes] = {}
    pending = [module_name(item) for item in kernel.modules]
    while pending:
        name = pending.pop()
        if name in needed:
            continue
        if name not in available:
            raise RootfsError(f"kernel module {name} is not in the kernel package")
        path, data = available[name]
        plain = _decompress(data, path) if path.endswith(".xz") else data
        vermagic = modinfo_field(plain, "vermagic") or ""
        if not vermagic.startswith(kernel.release + " "):
            raise RootfsError(f"module {name} was built for {vermagic.split(' ')[0]!r}, not {kernel.release}")
        needed[name] = plain
        pending.extend(module_name(item) for item in (modinfo_field(plain, "depends") or "").split(",") if item)
    return KernelParts(bzimage, load_order(kernel.modules, needed))
