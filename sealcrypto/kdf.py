"""Seal's identity hashing and key derivations (all SHA3-256), exactly as ``ibe.rs``/``lib.rs``.

- identity point: ``H1(full_id) = hash_to_G1(DST_ID ‖ package_id ‖ inner_id)``
- per-slot KEM key: ``SHA3(DST_KDF ‖ GT(x) ‖ G2(nonce) ‖ G1(gid) ‖ object_id ‖ index)``
- base-key derivation: ``SHA3(DST_DERIVE_KEY ‖ K ‖ purpose ‖ threshold ‖ shares… ‖ object ids…)``
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from enum import IntEnum

from sealcrypto import bls

DST_ID = b"SUI-SEAL-IBE-BLS12381-00"
DST_KDF = b"SUI-SEAL-IBE-BLS12381-H2-00"
DST_DERIVE_KEY = b"SUI-SEAL-IBE-BLS12381-H3-00"
DST_POP = b"SUI-SEAL-IBE-BLS12381-POP-00"
KEY_BYTES = 32
OBJECT_ID_BYTES = 32
IDENTITY_POINT_CACHE_SIZE = 1024


class KeyPurpose(IntEnum):
    ENCRYPTED_RANDOMNESS = 0
    DEM = 1


def full_id(package_id: bytes, inner_id: bytes) -> bytes:
    """The IBE identity: the first-version package id followed by the inner id."""
    if len(package_id) != OBJECT_ID_BYTES:
        raise ValueError("a package id is 32 bytes")
    return bytes(package_id) + bytes(inner_id)


def identity_point(identity: bytes) -> bls.G1Point:
    """``H1(identity)``, memoized: one owner's memories share one identity, and hashing to G1 costs as much
    as a third of a pairing. Only public values are kept (an identity and its curve point; points are
    immutable)."""
    return _identity_point(bytes(identity))


@functools.lru_cache(maxsize=IDENTITY_POINT_CACHE_SIZE)
def _identity_point(identity: bytes) -> bls.G1Point:
    return bls.hash_to_g1(DST_ID + identity)


def kdf(
    x: bls.GTElement, nonce: bls.G2Point, gid: bls.G1Point, object_id: bytes, index: int
) -> bytes:
    if len(object_id) != OBJECT_ID_BYTES or not 0 <= index <= 255:
        raise ValueError("object id must be 32 bytes and index a u8")
    digest = hashlib.sha3_256(DST_KDF)
    digest.update(bls.gt_to_bytes(x))
    digest.update(bls.g2_to_bytes(nonce))
    digest.update(bls.g1_to_bytes(gid))
    digest.update(object_id)
    digest.update(bytes([index]))
    return digest.digest()


def derive_key(
    purpose: KeyPurpose,
    base_key: bytes,
    encrypted_shares: Sequence[bytes],
    threshold: int,
    object_ids: Sequence[bytes],
) -> bytes:
    """Derive the randomness key or the DEM key from the base key (duplicates kept, services order)."""
    if len(encrypted_shares) != len(object_ids):
        raise ValueError("one encrypted share per key-server slot")
    digest = hashlib.sha3_256(DST_DERIVE_KEY)
    digest.update(base_key)
    digest.update(bytes([int(purpose), threshold]))
    for share in encrypted_shares:
        digest.update(share)
    for object_id in object_ids:
        digest.update(object_id)
    return digest.digest()


def xor(left: bytes, right: bytes) -> bytes:
    if len(left) != len(right):
        raise ValueError("xor of different lengths")
    return bytes(a ^ b for a, b in zip(left, right, strict=True))
