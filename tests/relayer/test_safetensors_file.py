"""relayer.safetensors_file: files written here by the format's rules, read back; every malformed case refused."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from relayer.safetensors_file import MAX_HEADER_BYTES, SafetensorsError, parse_safetensors, read_safetensors


def encode(tensors: dict[str, np.ndarray], *, header: dict | None = None, tail: bytes = b"") -> bytes:
    """A safetensors file: tensors laid out in name order, header padded to 8 bytes as the reference writer does."""
    entries, data, offset = {}, b"", 0
    names = {"F32": np.float32, "I64": np.int64, "F16": np.float16}
    for name, array in sorted(tensors.items()):
        dtype = next(code for code, kind in names.items() if array.dtype == kind)
        raw = np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()
        entries[name] = {"dtype": dtype, "shape": list(array.shape), "data_offsets": [offset, offset + len(raw)]}
        data, offset = data + raw, offset + len(raw)
    document = json.dumps(header if header is not None else {"__metadata__": {"format": "pt"}, **entries}).encode()
    document += b" " * (-len(document) % 8)
    return struct.pack("<Q", len(document)) + document + data + tail


class TestRead:
    def test_round_trip_of_several_dtypes_and_shapes(self, tmp_path):
        tensors = {
            "a.weight": np.arange(12, dtype=np.float32).reshape(3, 4),
            "b.bias": np.array([1.5, -2.0], dtype=np.float32),
            "positions": np.arange(5, dtype=np.int64).reshape(1, 5),
            "scalar": np.array(3.0, dtype=np.float16),
        }
        path = tmp_path / "model.safetensors"
        path.write_bytes(encode(tensors))
        loaded = read_safetensors(path)
        assert sorted(loaded) == sorted(tensors)
        for name, array in tensors.items():
            assert loaded[name].dtype == array.dtype and loaded[name].shape == array.shape
            np.testing.assert_array_equal(loaded[name], array)

    def test_arrays_are_read_only_views(self, tmp_path):
        path = tmp_path / "model.safetensors"
        path.write_bytes(encode({"w": np.ones((2, 2), dtype=np.float32)}))
        array = read_safetensors(path)["w"]
        assert not array.flags.writeable
        with pytest.raises(ValueError):
            array[0, 0] = 2.0

    def test_empty_tensor_list(self):
        assert parse_safetensors(encode({})) == {}


class TestRefuses:
    def test_a_truncated_length(self):
        with pytest.raises(SafetensorsError, match="8-byte header length"):
            parse_safetensors(b"\x01\x00")

    def test_a_header_longer_than_the_cap_or_the_file(self):
        with pytest.raises(SafetensorsError, match="header length"):
            parse_safetensors(struct.pack("<Q", MAX_HEADER_BYTES + 1) + b"{}")
        with pytest.raises(SafetensorsError, match="header length"):
            parse_safetensors(struct.pack("<Q", 100) + b"{}")

    def test_a_header_that_is_not_a_json_object(self):
        with pytest.raises(SafetensorsError, match="not JSON"):
            parse_safetensors(struct.pack("<Q", 4) + b"\xff\xfe{}")
        with pytest.raises(SafetensorsError, match="not a JSON object"):
            parse_safetensors(struct.pack("<Q", 2) + b"[]")

    @pytest.mark.parametrize(
        ("entry", "message"),
        [
            ({"dtype": "BF16", "shape": [1], "data_offsets": [0, 2]}, "dtype 'BF16'"),
            ({"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}, "shape must be"),
            ({"dtype": "F32", "shape": [1] * 9, "data_offsets": [0, 4]}, "shape must be"),
            ({"dtype": "F32", "shape": [True], "data_offsets": [0, 4]}, "shape must be"),
            ({"dtype": "F32", "shape": [1], "data_offsets": [0]}, "data_offsets must be"),
            ({"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}, "needs 8 bytes, not 4"),
            ({"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}, "outside the 4-byte buffer"),
            ({"dtype": "F32", "shape": [1], "data_offsets": [8, 4]}, "outside"),
        ],
    )
    def test_a_bad_entry(self, entry, message):
        with pytest.raises(SafetensorsError, match=message):
            parse_safetensors(encode({}, header={"t": entry}, tail=b"\0" * 4))

    def test_holes_overlaps_and_trailing_bytes(self):
        hole = {"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}
        with pytest.raises(SafetensorsError, match="starts at 4, not 0"):
            parse_safetensors(encode({}, header=hole, tail=b"\0" * 8))
        overlap = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}
        with pytest.raises(SafetensorsError, match="a hole or an overlap"):
            parse_safetensors(encode({}, header=overlap, tail=b"\0" * 8))
        with pytest.raises(SafetensorsError, match="4 bytes after the last tensor"):
            parse_safetensors(encode({"a": np.zeros(1, dtype=np.float32)}, tail=b"\0" * 4))

    def test_a_non_object_entry(self):
        with pytest.raises(SafetensorsError, match="map a tensor name to an object"):
            parse_safetensors(encode({}, header={"t": [1, 2]}))

    def test_a_file_too_short_to_be_one(self, tmp_path):
        path = tmp_path / "empty.safetensors"
        path.write_bytes(b"")
        with pytest.raises(SafetensorsError, match="not a plausible"):
            read_safetensors(path)
