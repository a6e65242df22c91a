"""Seal committee key servers: one master key shared t-of-n among members, used as one logical server.

A committee ``KeyServerV2`` lists each member's partial public key ``g2^{s_i}`` (party ``i`` holds the
Shamir share ``s_i`` of the master key at x = i + 1) next to the committee key ``g2^{msk}``. A member
answers ``/v1/fetch_key`` with its partial user key ``H1(id)^{s_i}`` ElGamal-encrypted to the caller;
the aggregator checks every encrypted share against the member's partial key and combines t of them by
Lagrange interpolation *inside the ciphertexts* (ElGamal is additively homomorphic), so it never sees a
user key. To the client the committee is one server with one public key. Seal: ``crates/crypto/src/
elgamal.rs`` (``aggregate_encrypted``), ``ibe.rs`` (``verify_encrypted_signature``), key-server aggregator.

Clients use ``verify_committee_public_key`` (the on-chain key and partial keys agree); the localnet's
aggregator uses the rest.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from sealcrypto import bls, kdf
from sealcrypto.errors import InvalidKey

MAX_MEMBERS = 255


def _lagrange_at_zero(xs: Sequence[int], at: int = 0) -> list[int]:
    """Coefficients λ_i with Σ λ_i f(x_i) = f(at) for a polynomial of degree < len(xs), mod the group order."""
    order = bls.CURVE_ORDER
    if len(set(xs)) != len(xs) or any(not 0 < x < order for x in xs):
        raise InvalidKey("share indices must be distinct and non-zero")
    coefficients = []
    for i, xi in enumerate(xs):
        numerator, denominator = 1, 1
        for j, xj in enumerate(xs):
            if i != j:
                numerator = numerator * (at - xj) % order
                denominator = denominator * (xi - xj) % order
        coefficients.append(numerator * pow(denominator, -1, order) % order)
    return coefficients


def _scalar(value: int) -> bls.Scalar:
    return bls.Scalar.from_be_bytes((value % bls.CURVE_ORDER).to_bytes(32, "big"))


def split_master_key(
    master_key: bls.Scalar, threshold: int, members: int, rng: Callable[[int], bytes] = os.urandom
) -> list[bls.Scalar]:
    """Shamir-share ``master_key`` over the scalar field: share ``i`` (party ``i``) is f(i + 1)."""
    if not 1 <= threshold <= members <= MAX_MEMBERS:
        raise ValueError(f"need 1 <= threshold <= members <= {MAX_MEMBERS}")
    order = bls.CURVE_ORDER
    secret = int.from_bytes(bls.scalar_to_bytes(master_key), "big")
    coefficients = [secret] + [int.from_bytes(bls.scalar_to_bytes(bls.random_scalar(rng)), "big")
                               for _ in range(threshold - 1)]
    shares = []
    for party_id in range(members):
        x, value = party_id + 1, 0
        for coefficient in reversed(coefficients):  # Horner
            value = (value * x + coefficient) % order
        shares.append(_scalar(value))
    return shares


def verify_committee_public_key(public_key: bytes, threshold: int, partial_public_keys: Sequence[bytes]) -> bool:
    """Whether every partial key lies on one degree-(t-1) polynomial whose value at 0 is ``public_key``.

    Checked in G2: interpolate from the first t partial keys, compare at 0 and at every other member.
    False for malformed points too.
    """
    if not 1 <= threshold <= len(partial_public_keys) <= MAX_MEMBERS:
        return False
    try:
        committee_key = bls.g2_from_bytes(public_key)
        points = [bls.g2_from_bytes(key) for key in partial_public_keys]
    except InvalidKey:
        return False
    basis_xs = list(range(1, threshold + 1))
    basis = points[:threshold]

    def interpolate(at: int) -> bls.G2Point:
        total = bls.G2Point.identity()
        for coefficient, point in zip(_lagrange_at_zero(basis_xs, at), basis, strict=True):
            total = total + point * _scalar(coefficient)
        return total

    if interpolate(0) != committee_key:
        return False
    return all(interpolate(party_id + 1) == points[party_id] for party_id in range(threshold, len(points)))


def verify_encrypted_share(
    ciphertext: tuple[bytes, bytes], verification_key: bytes, partial_public_key: bytes, full_id: bytes
) -> bool:
    """A member's ElGamal-encrypted partial key is ``H1(id)^{s_i}`` under the caller's key.

    ``e(c1, g2) == e(c0, vk) · e(H1(id), partial_pk)`` with ``vk = g2^s`` the caller's verification key.
    False for malformed or identity points.
    """
    try:
        c0, c1 = bls.g1_from_bytes(ciphertext[0]), bls.g1_from_bytes(ciphertext[1])
        vk, partial = bls.g2_from_bytes(verification_key), bls.g2_from_bytes(partial_public_key)
    except InvalidKey:
        return False
    identity = bls.G1Point.identity()
    if c0 == identity or c1 == identity or vk == bls.G2Point.identity() or partial == bls.G2Point.identity():
        return False
    left = bls.pairing(c1, bls.g2_generator())
    right = bls.pairing(c0, vk) * bls.pairing(kdf.identity_point(full_id), partial)
    return bool(left == right)


def aggregate_encrypted_shares(
    threshold: int, shares: Sequence[tuple[int, tuple[bytes, bytes]]]
) -> tuple[bytes, bytes]:
    """Combine exactly ``threshold`` ``(party_id, (c0, c1))`` encrypted shares into one encrypted user key."""
    if threshold < 1 or len(shares) != threshold:
        raise InvalidKey(f"need exactly {threshold} encrypted shares")
    coefficients = _lagrange_at_zero([party_id + 1 for party_id, _ in shares])
    c0, c1 = bls.G1Point.identity(), bls.G1Point.identity()
    for coefficient, (_, (share_c0, share_c1)) in zip(coefficients, shares, strict=True):
        weight = _scalar(coefficient)
        c0 = c0 + bls.g1_from_bytes(share_c0) * weight
        c1 = c1 + bls.g1_from_bytes(share_c1) * weight
    return bls.g1_to_bytes(c0), bls.g1_to_bytes(c1)
