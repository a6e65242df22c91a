"""Sui addresses: derivation from a public key and canonical text form."""

from __future__ import annotations

import hashlib
import re

ED25519_FLAG = 0x00
ADDRESS_HEX_LENGTH = 64
_HEX_DIGITS = re.compile(r"[0-9a-fA-F]{1,64}")  # ASCII only (str.isdigit-style checks accept other scripts)


def sui_address(public_key: bytes, scheme_flag: int = ED25519_FLAG) -> str:
    """``0x`` + BLAKE2b-256(flag ‖ public key), the address Sui derives for a single key."""
    digest = hashlib.blake2b(bytes([scheme_flag]) + bytes(public_key), digest_size=32).hexdigest()
    return "0x" + digest


def normalize_address(value: str) -> str:
    """Lowercase, ``0x``-prefixed, left-padded to 64 hex digits; raises ``ValueError`` otherwise."""
    if not isinstance(value, str):
        raise ValueError("a Sui address must be a string")
    text = value[2:] if value[:2].lower() == "0x" else value
    if not _HEX_DIGITS.fullmatch(text):
        raise ValueError(f"not a Sui address: {value!r}")
    return "0x" + text.lower().rjust(ADDRESS_HEX_LENGTH, "0")


def is_address(value: object) -> bool:
    try:
        normalize_address(value)  # type: ignore[arg-type]
    except ValueError:
        return False
    return True
