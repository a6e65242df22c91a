import struct

import pytest

from manifest import MAX_MANIFEST_BYTES, FrameReader, ManifestError, encode_frame


class TestFraming:
    def test_round_trip_byte_by_byte(self):
        frame = encode_frame(b'{"format":1}')
        reader = FrameReader()
        assert reader.wanted == 8
        for index in range(len(frame)):
            assert reader.document is None
            reader.feed(frame[index : index + 1])
        assert reader.document == b'{"format":1}'
        assert reader.wanted == 0

    def test_header_is_magic_and_big_endian_length(self):
        assert encode_frame(b"abc") == b"MWM1\x00\x00\x00\x03abc"

    @pytest.mark.parametrize(
        ("data", "match"),
        [
            (b"HTTP/1.1 200 OK\r\n", "did not start with b'MWM1'"),
            (b"MWM1" + struct.pack(">I", 0), "announces 0 bytes"),
            (b"MWM1" + struct.pack(">I", MAX_MANIFEST_BYTES + 1), "announces 65537 bytes"),
            (b"MWM1\x00\x00\x00\x01ab", "after the configuration frame"),
        ],
    )
    def test_refuses(self, data, match):
        with pytest.raises(ManifestError, match=match):
            FrameReader().feed(data)

    def test_refuses_bytes_after_a_complete_frame(self):
        reader = FrameReader()
        reader.feed(encode_frame(b"x"))
        with pytest.raises(ManifestError, match="after the configuration frame"):
            reader.feed(b"y")

    @pytest.mark.parametrize("size", [0, MAX_MANIFEST_BYTES + 1])
    def test_encoder_refuses_sizes_the_reader_would(self, size):
        with pytest.raises(ManifestError, match="1..65536 bytes"):
            encode_frame(b"x" * size)
