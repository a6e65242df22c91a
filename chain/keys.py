"""Sui private-key text forms: bech32 ``suiprivkey1…`` (Ed25519 only) and hex seeds."""

from __future__ import annotations

_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_GENERATORS = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
_HRP = "suiprivkey"
_ED25519_FLAG = 0x00
MAX_BECH32_LENGTH = 200


def _polymod(values: bytes) -> int:
    checksum = 1
    for value in values:
        top = checksum >> 25
        checksum = ((checksum & 0x1FFFFFF) << 5) ^ value
        for index, generator in enumerate(_GENERATORS):
            if (top >> index) & 1:
                checksum ^= generator
    return checksum


def _hrp_expand(hrp: str) -> bytes:
    return bytes([ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp])


def _convert_bits(data: bytes, from_bits: int, to_bits: int, pad: bool) -> bytes:
    accumulator = 0
    bits = 0
    out = bytearray()
    max_value = (1 << to_bits) - 1
    for value in data:
        if value >> from_bits:
            raise ValueError("invalid bech32 data value")
        accumulator = (accumulator << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((accumulator >> bits) & max_value)
    if pad and bits:
        out.append((accumulator << (to_bits - bits)) & max_value)
    elif not pad and (bits >= from_bits or (accumulator << (to_bits - bits)) & max_value):
        raise ValueError("invalid bech32 padding")
    return bytes(out)


def encode_sui_private_key(seed: bytes) -> str:
    if len(seed) != 32:
        raise ValueError("an Ed25519 seed is 32 bytes")
    data = _convert_bits(bytes([_ED25519_FLAG]) + seed, 8, 5, pad=True)
    polymod = _polymod(_hrp_expand(_HRP) + data + bytes(6)) ^ 1
    checksum = bytes((polymod >> 5 * (5 - i)) & 31 for i in range(6))
    return _HRP + "1" + "".join(_CHARSET[d] for d in data + checksum)


def decode_sui_private_key(text: str) -> bytes:
    """Return the 32-byte Ed25519 seed of a ``suiprivkey1…`` string or a 64-digit hex seed."""
    candidate = text.strip()
    if len(candidate) > MAX_BECH32_LENGTH:
        raise ValueError("private key text is too long")
    if not candidate.lower().startswith(_HRP + "1"):
        hex_text = candidate[2:] if candidate[:2].lower() == "0x" else candidate
        if len(hex_text) != 64 or any(c not in "0123456789abcdefABCDEF" for c in hex_text):
            raise ValueError("expected suiprivkey1… or a 64-digit hex Ed25519 seed")
        return bytes.fromhex(hex_text)
    if candidate != candidate.lower() and candidate != candidate.upper():
        raise ValueError("bech32 string is mixed case")
    candidate = candidate.lower()
    separator = candidate.rfind("1")
    try:
        data = bytes(_CHARSET.index(c) for c in candidate[separator + 1 :])
    except ValueError as exc:
        raise ValueError("bech32 string has a character outside the charset") from exc
    if len(data) < 6 or _polymod(_hrp_expand(_HRP) + data) != 1:
        raise ValueError("bech32 checksum mismatch")
    payload = _convert_bits(data[:-6], 5, 8, pad=False)
    if len(payload) != 33 or payload[0] != _ED25519_FLAG:
        raise ValueError("only Ed25519 Sui private keys are supported")
    return payload[1:]
