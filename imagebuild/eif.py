"""Enclave Image Format (EIF) v4 writer and parser, following aws-nitro-enclaves-image-format.

File layout, all integers big-endian:

    header (548 B): magic ".eif", version u16, flags u16, default_mem u64, default_cpus u64,
                    reserved u16, num_sections u16, section_offsets 32*u64, section_sizes 32*u64,
                    unused u32, crc32 u32
    then per section: type u16, flags u16, size u64, then `size` bytes of data

Sections are written in the order eif_build uses: kernel, cmdline, metadata, ramdisks, signature.
An offset points at the section header; a size counts only the data. The CRC-32 (IEEE, as zlib's)
covers every byte of the file except the CRC field itself.
"""

from __future__ import annotations

import enum
import json
import struct
import zlib
from dataclasses import dataclass

from imagebuild.errors import EifFormatError

EIF_MAGIC = b".eif"
EIF_VERSION = 4
MAX_SECTIONS = 32
HEADER_FORMAT = ">4sHHQQHH32Q32QII"
HEADER_SIZE = struct.calcsize(HEADER_FORMAT)
SECTION_HEADER_FORMAT = ">HHQ"
SECTION_HEADER_SIZE = struct.calcsize(SECTION_HEADER_FORMAT)
# eif_build's defaults: 1 GiB and 2 vCPUs (nitro-cli's run-enclave overrides both).
DEFAULT_MEMORY_BYTES = 1024**3
DEFAULT_CPUS = 2
FLAG_AARCH64 = 0x1
DEFAULT_MAX_EIF_BYTES = 4 * 1024**3


class SectionType(enum.IntEnum):
    KERNEL = 1
    CMDLINE = 2
    RAMDISK = 3
    SIGNATURE = 4
    METADATA = 5


@dataclass(frozen=True)
class Section:
    type: SectionType
    data: bytes
    flags: int = 0


@dataclass(frozen=True)
class EnclaveImage:
    """The parsed content of an EIF: header fields plus its sections in file order."""

    sections: tuple[Section, ...]
    flags: int = 0
    default_memory: int = DEFAULT_MEMORY_BYTES
    default_cpus: int = DEFAULT_CPUS
    version: int = EIF_VERSION

    def of_type(self, section_type: SectionType) -> list[bytes]:
        return [section.data for section in self.sections if section.type is section_type]

    @property
    def kernel(self) -> bytes:
        return self._single(SectionType.KERNEL)

    @property
    def cmdline(self) -> bytes:
        return self._single(SectionType.CMDLINE)

    @property
    def ramdisks(self) -> list[bytes]:
        return self.of_type(SectionType.RAMDISK)

    @property
    def metadata(self) -> dict[str, object]:
        return json.loads(self._single(SectionType.METADATA))

    def _single(self, section_type: SectionType) -> bytes:
        found = self.of_type(section_type)
        if len(found) != 1:
            raise EifFormatError(f"expected one {section_type.name.lower()} section, found {len(found)}")
        return found[0]


def build_image(*, kernel: bytes, cmdline: str, ramdisks: list[bytes], metadata: bytes) -> EnclaveImage:
    """Arrange sections in eif_build's order. The cmdline is stored without a trailing NUL."""
    if not ramdisks:
        raise EifFormatError("an EIF needs at least one ramdisk")
    if "\0" in cmdline:
        raise EifFormatError("the kernel command line must not contain NUL")
    sections = [
        Section(SectionType.KERNEL, kernel),
        Section(SectionType.CMDLINE, cmdline.encode()),
        Section(SectionType.METADATA, metadata),
        *(Section(SectionType.RAMDISK, ramdisk) for ramdisk in ramdisks),
    ]
    return EnclaveImage(tuple(sections))


def _header_bytes(image: EnclaveImage, crc: int) -> bytes:
    offsets, sizes = [0] * MAX_SECTIONS, [0] * MAX_SECTIONS
    position = HEADER_SIZE
    for index, section in enumerate(image.sections):
        offsets[index], sizes[index] = position, len(section.data)
        position += SECTION_HEADER_SIZE + len(section.data)
    return struct.pack(
        HEADER_FORMAT, EIF_MAGIC, image.version, image.flags, image.default_memory, image.default_cpus,
        0, len(image.sections), *offsets, *sizes, 0, crc,
    )


def _section_bytes(section: Section) -> bytes:
    return struct.pack(SECTION_HEADER_FORMAT, section.type, section.flags, len(section.data)) + section.data


def serialize(image: EnclaveImage) -> bytes:
    if not 1 <= len(image.sections) <= MAX_SECTIONS:
        raise EifFormatError(f"an EIF holds 1..{MAX_SECTIONS} sections, got {len(image.sections)}")
    body = b"".join(_section_bytes(section) for section in image.sections)
    crc = zlib.crc32(body, zlib.crc32(_header_bytes(image, 0)[:-4]))
    return _header_bytes(image, crc) + body


def parse(raw: bytes, *, max_bytes: int = DEFAULT_MAX_EIF_BYTES, check_crc: bool = True) -> EnclaveImage:
    """Parse and validate an EIF: magic, section table, section headers, and (by default) the CRC."""
    if len(raw) > max_bytes:
        raise EifFormatError(f"EIF of {len(raw)} bytes exceeds the cap of {max_bytes}")
    if len(raw) < HEADER_SIZE:
        raise EifFormatError(f"EIF shorter than its {HEADER_SIZE}-byte header")
    fields = struct.unpack(HEADER_FORMAT, raw[:HEADER_SIZE])
    magic, version, flags, default_memory, default_cpus, _reserved, count = fields[:7]
    offsets, sizes, crc = fields[7 : 7 + MAX_SECTIONS], fields[7 + MAX_SECTIONS : 7 + 2 * MAX_SECTIONS], fields[-1]
    if magic != EIF_MAGIC:
        raise EifFormatError(f"bad EIF magic {magic!r}")
    if not 1 <= count <= MAX_SECTIONS:
        raise EifFormatError(f"EIF declares {count} sections; allowed 1..{MAX_SECTIONS}")
    sections = []
    expected_offset = HEADER_SIZE
    for index in range(count):
        offset, size = offsets[index], sizes[index]
        if offset != expected_offset:
            raise EifFormatError(f"section {index} at offset {offset}, expected {expected_offset}")
        if offset + SECTION_HEADER_SIZE > len(raw):
            raise EifFormatError(f"section {index} header runs past the end of the file")
        type_code, section_flags, stored_size = struct.unpack(
            SECTION_HEADER_FORMAT, raw[offset : offset + SECTION_HEADER_SIZE]
        )
        if stored_size != size:
            raise EifFormatError(f"section {index} size {stored_size} differs from the header's {size}")
        try:
            section_type = SectionType(type_code)
        except ValueError as error:
            raise EifFormatError(f"section {index} has unknown type {type_code}") from error
        data_start = offset + SECTION_HEADER_SIZE
        if data_start + size > len(raw):
            raise EifFormatError(f"section {index} data runs past the end of the file")
        sections.append(Section(section_type, raw[data_start : data_start + size], section_flags))
        expected_offset = data_start + size
    if expected_offset != len(raw):
        raise EifFormatError(f"{len(raw) - expected_offset} trailing bytes after the last section")
    if any(offsets[count:]) or any(sizes[count:]):
        raise EifFormatError("unused section table slots are not zero")
    if check_crc:
        computed = zlib.crc32(raw[HEADER_SIZE:], zlib.crc32(raw[: HEADER_SIZE - 4]))
        if computed != crc:
            raise EifFormatError(f"EIF CRC32 mismatch: stored {crc:08x}, computed {computed:08x}")
    return EnclaveImage(tuple(sections), flags, default_memory, default_cpus, version)
