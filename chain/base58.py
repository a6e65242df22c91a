"""Base58 (Bitcoin alphabet), the text form Sui uses for object and transaction digests."""

from __future__ import annotations

ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX = {character: position for position, character in enumerate(ALPHABET)}
MAX_BASE58_TEXT = 128  # a 32-byte digest is at most 44 characters; anything longer is not a digest


def b58encode(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    out = []
    while number:
        number, remainder = divmod(number, 58)
        out.append(ALPHABET[remainder])
    leading_zeros = len(data) - len(data.lstrip(b"\x00"))
    return "1" * leading_zeros + "".join(reversed(out))


def b58decode(text: str) -> bytes:
    if len(text) > MAX_BASE58_TEXT:
        raise ValueError("base58 text is too long")
    number = 0
    for character in text:
        if character not in _INDEX:
            raise ValueError(f"invalid base58 character {character!r}")
        number = number * 58 + _INDEX[character]
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    leading_ones = len(text) - len(text.lstrip("1"))
    return b"\x00" * leading_ones + body


def decode_digest(text: str) -> bytes:
    """A Sui digest: base58 text of exactly 32 bytes."""
    raw = b58decode(text)
    if len(raw) != 32:
        raise ValueError("a Sui digest is 32 bytes")
    return raw
