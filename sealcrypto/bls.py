"""BLS12-381 group helpers on ``py-arkworks-bls12381`` with Seal's byte encodings.

G1 and G2 points use the 48/96-byte ZCash compressed form (decoding checks the subgroup),
scalars are 32-byte big-endian and must be canonical, and GT elements are written in the
576-byte blst/fastcrypto order that Seal hashes in its KDF.
"""

from __future__ import annotations

from collections.abc import Callable

import py_arkworks_bls12381 as arkworks

from sealcrypto.errors import InvalidKey

G1Point = arkworks.G1Point
G2Point = arkworks.G2Point
GTElement = arkworks.GT
Scalar = arkworks.Scalar

G1_BYTES = 48
G2_BYTES = 96
GT_BYTES = 576
SCALAR_BYTES = 32
FP_BYTES = 48
CURVE_ORDER = 0x73EDA753299D7D483339D80809A1D80553BDA402FFFE5BFEFFFFFFFF00000001
# RFC 9380 suite BLS12381G1_XMD:SHA-256_SSWU_RO_ with the min-sig BLS DST (fastcrypto and noble default).
HASH_TO_G1_DST = b"BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_"
# 64 random bytes reduced mod r: the bias is below 2^-250.
RANDOM_SCALAR_BYTES = 64


def g1_generator() -> G1Point:
    return G1Point()


def g2_generator() -> G2Point:
    return G2Point()


def g1_from_bytes(data: bytes) -> G1Point:
    if not isinstance(data, (bytes, bytearray)) or len(data) != G1_BYTES:
        raise InvalidKey("a G1 element is 48 compressed bytes")
    try:
        return G1Point.from_compressed_bytes(bytes(data))
    except ValueError as exc:
        raise InvalidKey("bytes are not a valid G1 element") from exc


def g2_from_bytes(data: bytes) -> G2Point:
    if not isinstance(data, (bytes, bytearray)) or len(data) != G2_BYTES:
        raise InvalidKey("a G2 element is 96 compressed bytes")
    try:
        return G2Point.from_compressed_bytes(bytes(data))
    except ValueError as exc:
        raise InvalidKey("bytes are not a valid G2 element") from exc


def g1_to_bytes(point: G1Point) -> bytes:
    return point.to_compressed_bytes()


def g2_to_bytes(point: G2Point) -> bytes:
    return point.to_compressed_bytes()


def scalar_from_bytes(data: bytes) -> Scalar:
    """Decode a canonical 32-byte big-endian scalar (``< r``), as fastcrypto does."""
    if len(data) != SCALAR_BYTES or int.from_bytes(data, "big") >= CURVE_ORDER:
        raise InvalidKey("not a canonical scalar")
    return Scalar.from_be_bytes(bytes(data))


def scalar_to_bytes(scalar: Scalar) -> bytes:
    return scalar.to_be_bytes()


def random_scalar(rng: Callable[[int], bytes]) -> Scalar:
    """A uniformly random non-zero scalar."""
    while True:
        scalar = Scalar.from_be_bytes_mod_order(rng(RANDOM_SCALAR_BYTES))
        if not scalar.is_zero():
            return scalar


def hash_to_g1(message: bytes) -> G1Point:
    return G1Point.hash_to_curve(bytes(message), HASH_TO_G1_DST)


def pairing(g1: G1Point, g2: G2Point) -> GTElement:
    return GTElement.pairing(g1, g2)


def pairings_equal(a1: G1Point, a2: G2Point, b1: G1Point, b2: G2Point) -> bool:
    """``e(a1, a2) == e(b1, b2)``, as one product-of-pairings check."""
    return GTElement.pairing_check([a1, -b1], [a2, b2])


def gt_to_bytes(element: GTElement) -> bytes:
    """Serialize GT the way blst/fastcrypto do (and Seal's KDF hashes).

    py-arkworks has no byte API for GT; ``str()`` yields arkworks' canonical little-endian
    serialization: 12 Fp limbs ordered c[j].c[i].c[k] with j (Fp6 half) outermost. blst writes
    each limb big-endian with the Fp2 index i outermost. The library version is pinned and the
    KDF regression vector guards this conversion.
    """
    raw = bytes.fromhex(str(element))
    if len(raw) != GT_BYTES:
        raise InvalidKey("unexpected GT serialization length")
    limbs = [raw[n * FP_BYTES : (n + 1) * FP_BYTES][::-1] for n in range(12)]
    ordered = (limbs[j * 6 + i * 2 + k] for i in range(3) for j in range(2) for k in range(2))
    return b"".join(ordered)
