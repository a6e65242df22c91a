"""Read a safetensors file (Hugging Face's weights format) into read-only numpy arrays, checked first.

Layout: an unsigned 64-bit little-endian header length ``N``, ``N`` bytes of JSON
``{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}``, then the data
buffer; offsets are relative to its start. Every bound is checked before a tensor is touched: header
size, tensor count, dtype, rank and element count, and that the tensors tile the buffer exactly (no
hole, no overlap, nothing after: the reference implementation's rule against polyglot files).

The file is memory-mapped and the arrays are views of the mapping: the weights cost no second copy
(inside the enclave the file already lives in RAM, in the image's root filesystem).
"""

from __future__ import annotations

import json
import math
import mmap
import struct
from pathlib import Path

import numpy as np

MAX_HEADER_BYTES = 1024 * 1024
MAX_TENSORS = 4096
MAX_RANK = 8
MAX_FILE_BYTES = 4 * 1024**3
# safetensors dtype -> numpy dtype (little-endian, as the format stores them)
DTYPES: dict[str, np.dtype] = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U8": np.dtype("u1"), "BOOL": np.dtype("?"),
}  # fmt: skip


class SafetensorsError(ValueError):
    """The file is not a well-formed safetensors file; the message says which bound it breaks."""


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Map ``path`` and return its tensors by name (read-only views of the mapping)."""
    with path.open("rb") as file:
        size = file.seek(0, 2)
        if not 8 <= size <= MAX_FILE_BYTES:
            raise SafetensorsError(f"{path.name}: {size} bytes is not a plausible safetensors file")
        mapping = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
    return parse_safetensors(mapping)


def parse_safetensors(data: bytes | mmap.mmap) -> dict[str, np.ndarray]:
    """The tensors of a safetensors file held in ``data`` (bytes, or a read-only mapping)."""
    if len(data) < 8:
        raise SafetensorsError("shorter than the 8-byte header length")
    (header_length,) = struct.unpack("<Q", data[:8])
    if header_length > MAX_HEADER_BYTES or 8 + header_length > len(data):
        raise SafetensorsError(f"header length {header_length} exceeds {MAX_HEADER_BYTES} bytes or the file")
    try:
        header = json.loads(bytes(data[8 : 8 + header_length]))
    except ValueError as error:  # UnicodeDecodeError included
        raise SafetensorsError(f"header is not JSON: {error}") from None
    if not isinstance(header, dict):
        raise SafetensorsError("header is not a JSON object")
    header.pop("__metadata__", None)
    if len(header) > MAX_TENSORS:
        raise SafetensorsError(f"more than {MAX_TENSORS} tensors")
    buffer_start = 8 + header_length
    buffer_length = len(data) - buffer_start
    layout = sorted((_entry(name, info, buffer_length) for name, info in header.items()), key=lambda item: item[2])
    expected_begin = 0
    for name, _, begin, end in layout:
        if begin != expected_begin:
            raise SafetensorsError(f"tensor {name!r} starts at {begin}, not {expected_begin}: a hole or an overlap")
        expected_begin = end
    if expected_begin != buffer_length:
        raise SafetensorsError(f"{buffer_length - expected_begin} bytes after the last tensor")
    tensors: dict[str, np.ndarray] = {}
    for name, (dtype, shape), begin, _ in layout:
        array = np.frombuffer(data, dtype=dtype, count=math.prod(shape), offset=buffer_start + begin)
        tensors[name] = array.reshape(shape)
    return tensors


def _entry(name: object, info: object, buffer_length: int) -> tuple[str, tuple[np.dtype, tuple[int, ...]], int, int]:
    if not isinstance(name, str) or not isinstance(info, dict):
        raise SafetensorsError("every header entry must map a tensor name to an object")
    dtype = DTYPES.get(str(info.get("dtype")))
    if dtype is None:
        raise SafetensorsError(f"tensor {name!r}: dtype {info.get('dtype')!r} is not one of {', '.join(DTYPES)}")
    shape, offsets = info.get("shape"), info.get("data_offsets")
    if not isinstance(shape, list) or len(shape) > MAX_RANK or not all(_natural(size) for size in shape):
        raise SafetensorsError(f"tensor {name!r}: shape must be a list of at most {MAX_RANK} non-negative integers")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_natural(offset) for offset in offsets):
        raise SafetensorsError(f"tensor {name!r}: data_offsets must be [begin, end]")
    begin, end = offsets
    if not begin <= end <= buffer_length:
        raise SafetensorsError(f"tensor {name!r}: data_offsets [{begin}, {end}] fall outside the {buffer_length}-byte buffer")
    if math.prod(shape) * dtype.itemsize != end - begin:
        raise SafetensorsError(f"tensor {name!r}: shape {shape} of {info['dtype']} needs {math.prod(shape) * dtype.itemsize} bytes, not {end - begin}")
    return name, (dtype, tuple(shape)), begin, end


def _natural(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
