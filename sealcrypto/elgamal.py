"""ElGamal in G1, used to carry user secret keys from a key server to the requester.

The requester draws s and sends ``enc_key = g1^s`` and ``enc_verification_key = g2^s``; the
server answers ``(g1^ρ, enc_key^ρ · usk)``; the requester computes ``c1 − s·c0``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from sealcrypto import bls


@dataclass(frozen=True, repr=False)
class ElGamalKeyPair:
    """A fresh per-request key pair. The secret never leaves this object."""

    secret: bls.Scalar = field(repr=False)
    public_key: bytes
    verification_key: bytes

    @classmethod
    def generate(cls, rng: Callable[[int], bytes] = os.urandom) -> ElGamalKeyPair:
        secret = bls.random_scalar(rng)
        return cls(
            secret=secret,
            public_key=bls.g1_to_bytes(bls.g1_generator() * secret),
            verification_key=bls.g2_to_bytes(bls.g2_generator() * secret),
        )

    def decrypt(self, ciphertext: tuple[bytes, bytes]) -> bls.G1Point:
        return elgamal_decrypt(self.secret, ciphertext)

    def __repr__(self) -> str:
        return "ElGamalKeyPair(<redacted>)"


def elgamal_encrypt(
    public_key: bytes, message: bls.G1Point, rng: Callable[[int], bytes] = os.urandom
) -> tuple[bytes, bytes]:
    """Encrypt a G1 element under ``public_key`` (48 bytes); returns ``(c0, c1)`` compressed."""
    recipient = bls.g1_from_bytes(public_key)
    ephemeral = bls.random_scalar(rng)
    c0 = bls.g1_generator() * ephemeral
    c1 = recipient * ephemeral + message
    return bls.g1_to_bytes(c0), bls.g1_to_bytes(c1)


def elgamal_decrypt(secret: bls.Scalar, ciphertext: tuple[bytes, bytes]) -> bls.G1Point:
    c0 = bls.g1_from_bytes(ciphertext[0])
    c1 = bls.g1_from_bytes(ciphertext[1])
    return c1 - c0 * secret


def verification_key_matches(public_key: bytes, verification_key: bytes) -> bool:
    """``e(enc_key, g2) == e(g1, enc_verification_key)``: both come from the same s."""
    return bls.pairings_equal(
        bls.g1_from_bytes(public_key),
        bls.g2_generator(),
        bls.g1_generator(),
        bls.g2_from_bytes(verification_key),
    )
