"""Binary Canonical Serialization (BCS), the subset Sui and Seal use.

Writers return bytes; ``BcsReader`` reads from a buffer and raises ``BcsError`` on truncation,
non-canonical ULEB128 or trailing bytes, so a parser never reads past what it was given.
"""

from __future__ import annotations

import builtins
import struct

MAX_ULEB128_BYTES = 5  # BCS lengths are u32: at most five 7-bit groups.


class BcsError(ValueError):
    """Malformed BCS input."""


def uleb128(value: int) -> bytes:
    if value < 0:
        raise ValueError("ULEB128 encodes non-negative integers only")
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def u8(value: int) -> bytes:
    return struct.pack("<B", value)


def u16(value: int) -> bytes:
    return struct.pack("<H", value)


def u32(value: int) -> bytes:
    return struct.pack("<I", value)


def u64(value: int) -> bytes:
    return struct.pack("<Q", value)


def u256(value: int) -> bytes:
    return value.to_bytes(32, "little")


def byte_vector(data: bytes) -> bytes:
    """``vector<u8>``: ULEB128 length, then the bytes."""
    return uleb128(len(data)) + bytes(data)


def string(text: str) -> bytes:
    return byte_vector(text.encode("utf-8"))


def vector(items: list[bytes]) -> bytes:
    """A vector of already-serialized elements."""
    return uleb128(len(items)) + b"".join(items)


def option(value: bytes | None) -> bytes:
    return b"\x00" if value is None else b"\x01" + value


def address(value: str | bytes) -> bytes:
    """A 32-byte Sui address/object id, no length prefix."""
    if isinstance(value, bytes):
        raw = value
    else:
        text = value[2:] if value.lower().startswith("0x") else value
        if len(text) > 64 or any(c not in "0123456789abcdefABCDEF" for c in text):
            raise ValueError(f"not a Sui address: {value!r}")
        raw = bytes.fromhex(text.rjust(64, "0"))
    if len(raw) != 32:
        raise ValueError("a Sui address is 32 bytes")
    return raw


class BcsReader:
    """Reads BCS values from ``data``; call ``finish()`` to reject trailing bytes."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(bytes(data))
        self._pos = 0

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def fixed(self, length: int) -> bytes:
        if length < 0 or self._pos + length > len(self._data):
            raise BcsError("unexpected end of BCS input")
        chunk = bytes(self._data[self._pos : self._pos + length])
        self._pos += length
        return chunk

    def uleb128(self) -> int:
        value = 0
        for shift_index in range(MAX_ULEB128_BYTES):
            byte = self.fixed(1)[0]
            value |= (byte & 0x7F) << (7 * shift_index)
            if not byte & 0x80:
                if byte == 0 and shift_index > 0:
                    raise BcsError("non-canonical ULEB128")
                if value > 0xFFFFFFFF:
                    raise BcsError("ULEB128 length exceeds u32")
                return value
        raise BcsError("ULEB128 too long")

    def u8(self) -> int:
        return self.fixed(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self.fixed(2), "little")

    def u32(self) -> int:
        return int.from_bytes(self.fixed(4), "little")

    def u64(self) -> int:
        return int.from_bytes(self.fixed(8), "little")

    def u256(self) -> int:
        return int.from_bytes(self.fixed(32), "little")

    def bool(self) -> bool:
        value = self.u8()
        if value > 1:
            raise BcsError("bool must be 0 or 1")
        return value == 1

    def byte_vector(self, max_length: int = 1 << 24) -> bytes:
        length = self.uleb128()
        if length > max_length:
            raise BcsError(f"vector of {length} bytes exceeds the cap of {max_length}")
        return self.fixed(length)

    def string(self, max_length: int = 1 << 16) -> str:
        try:
            return self.byte_vector(max_length).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BcsError("string is not UTF-8") from exc

    def address(self) -> str:
        return "0x" + self.fixed(32).hex()

    def option_tag(self) -> builtins.bool:  # ``bool`` here would name the method above
        return self.bool()

    def finish(self) -> None:
        if self.remaining:
            raise BcsError(f"{self.remaining} trailing bytes after BCS value")
