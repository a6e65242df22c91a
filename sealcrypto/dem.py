"""Seal's data-encapsulation mechanisms: AES-256-GCM with a fixed IV, and HMAC-SHA3-256 in CTR mode.

Both are only safe because every object gets a fresh random key (Seal ``dem.rs``). Failures raise
the opaque ``DecryptError``.
"""

from __future__ import annotations

import hashlib
import hmac
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from sealcrypto.errors import DecryptError

# 16-byte IV fixed by Seal; GCM derives J0 via GHASH for non-96-bit IVs.
AES_GCM_IV = bytes.fromhex("8a3799fdc62e79dba0805907d69c94dc")
HMAC_CTR_ENCRYPTION_TAG = b"HMAC-CTR-ENC"
HMAC_CTR_MAC_TAG = b"HMAC-CTR-MAC"
KEY_BYTES = 32
MAC_BYTES = 32
GCM_TAG_BYTES = 16


def aes_gcm_encrypt(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    return AESGCM(_check_key(key)).encrypt(AES_GCM_IV, plaintext, aad)


def aes_gcm_decrypt(key: bytes, blob: bytes, aad: bytes) -> bytes:
    if len(blob) < GCM_TAG_BYTES:
        raise DecryptError()
    try:
        return AESGCM(_check_key(key)).decrypt(AES_GCM_IV, blob, aad)
    except InvalidTag:
        raise DecryptError() from None


def hmac_ctr_encrypt(key: bytes, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
    """Return ``(ciphertext, mac)``."""
    ciphertext = _keystream_xor(_check_key(key), plaintext)
    return ciphertext, _mac(key, aad, ciphertext)


def hmac_ctr_decrypt(key: bytes, blob: bytes, aad: bytes, mac: bytes) -> bytes:
    if not hmac.compare_digest(_mac(_check_key(key), aad, blob), mac):
        raise DecryptError()
    return _keystream_xor(key, blob)


def _keystream_xor(key: bytes, data: bytes) -> bytes:
    out = bytearray()
    for block, offset in enumerate(range(0, len(data), KEY_BYTES)):
        pad = _hmac(key, HMAC_CTR_ENCRYPTION_TAG + struct.pack("<Q", block))
        chunk = data[offset : offset + KEY_BYTES]
        out += bytes(a ^ b for a, b in zip(chunk, pad, strict=False))
    return bytes(out)


def _mac(key: bytes, aad: bytes, ciphertext: bytes) -> bytes:
    # The aad length prefix keeps (aad, ciphertext) splits unambiguous.
    return _hmac(key, HMAC_CTR_MAC_TAG + struct.pack("<Q", len(aad)) + aad + ciphertext)


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha3_256).digest()


def _check_key(key: bytes) -> bytes:
    if len(key) != KEY_BYTES:
        raise ValueError("DEM keys are 32 bytes")
    return bytes(key)
