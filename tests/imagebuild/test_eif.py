import struct
import zlib

import pytest

from imagebuild.eif import HEADER_SIZE, SECTION_HEADER_SIZE, SectionType, build_image, parse, serialize
from imagebuild.errors import EifFormatError


def tiny_image():
    return build_image(kernel=b"KERNEL", cmdline="console=ttyS0", ramdisks=[b"RD0", b"RD1-long"], metadata=b'{"a":1}')


class TestLayout:
    def test_header_sizes_match_the_format(self):
        assert HEADER_SIZE == 548
        assert SECTION_HEADER_SIZE == 12

    def test_header_fields(self):
        raw = serialize(tiny_image())
        magic, version, flags, memory, cpus, reserved, count = struct.unpack(">4sHHQQHH", raw[:28])
        assert (magic, version, flags, memory, cpus, reserved, count) == (b".eif", 4, 0, 1024**3, 2, 0, 5)
        offsets = struct.unpack(">32Q", raw[28:284])
        sizes = struct.unpack(">32Q", raw[284:540])
        assert sizes[:5] == (6, 13, 7, 3, 8) and not any(sizes[5:])
        assert offsets[0] == 548 and offsets[1] == 548 + 12 + 6
        assert raw[offsets[2] : offsets[2] + 12] == struct.pack(">HHQ", 5, 0, 7)  # metadata after cmdline

    def test_section_order_is_eif_builds(self):
        kinds = [section.type for section in tiny_image().sections]
        assert kinds == [SectionType.KERNEL, SectionType.CMDLINE, SectionType.METADATA, SectionType.RAMDISK, SectionType.RAMDISK]

    def test_cmdline_has_no_trailing_nul(self):
        assert tiny_image().cmdline == b"console=ttyS0"

    def test_crc_covers_everything_but_itself(self):
        raw = serialize(tiny_image())
        stored = struct.unpack(">I", raw[544:548])[0]
        assert stored == zlib.crc32(raw[:544] + raw[548:])


class TestRoundTrip:
    def test_write_then_parse(self):
        image = tiny_image()
        parsed = parse(serialize(image))
        assert parsed == image
        assert parsed.ramdisks == [b"RD0", b"RD1-long"]
        assert parsed.metadata == {"a": 1}

    def test_serialize_is_deterministic(self):
        assert serialize(tiny_image()) == serialize(tiny_image())


class TestParseRejects:
    def test_bad_magic(self):
        raw = bytearray(serialize(tiny_image()))
        raw[0:4] = b"EIF."
        with pytest.raises(EifFormatError, match="bad EIF magic"):
            parse(bytes(raw))

    def test_flipped_byte_fails_crc(self):
        raw = bytearray(serialize(tiny_image()))
        raw[-1] ^= 1
        with pytest.raises(EifFormatError, match="CRC32 mismatch"):
            parse(bytes(raw))

    def test_truncated(self):
        with pytest.raises(EifFormatError, match="runs past the end"):
            parse(serialize(tiny_image())[:-2], check_crc=False)

    def test_short_header(self):
        with pytest.raises(EifFormatError, match="shorter than its 548-byte header"):
            parse(b".eif" + b"\0" * 10)

    def test_trailing_bytes(self):
        with pytest.raises(EifFormatError, match="2 trailing bytes"):
            parse(serialize(tiny_image()) + b"xx", check_crc=False)

    def test_unknown_section_type(self):
        raw = bytearray(serialize(tiny_image()))
        raw[548:550] = struct.pack(">H", 9)
        with pytest.raises(EifFormatError, match="unknown type 9"):
            parse(bytes(raw), check_crc=False)

    def test_size_cap(self):
        with pytest.raises(EifFormatError, match="exceeds the cap"):
            parse(serialize(tiny_image()), max_bytes=100)

    def test_needs_a_ramdisk(self):
        with pytest.raises(EifFormatError, match="at least one ramdisk"):
            build_image(kernel=b"K", cmdline="", ramdisks=[], metadata=b"{}")
