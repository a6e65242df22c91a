"""A key server's master secret: public key, user-key extraction and proof of possession.

Used by the localnet key server and tests; production key servers are run by third parties.
``usk = H1(full_id)^msk`` is a min-sig BLS signature on ``DST_ID ‖ full_id``.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from sealcrypto import bls, kdf

MASTER_SEED_BYTES = 32
HKDF_OUTPUT_BYTES = 64


@dataclass(frozen=True, repr=False)
class KeyServerSecret:
    master_key: bls.Scalar = field(repr=False)

    @classmethod
    def generate(cls, rng: Callable[[int], bytes] = os.urandom) -> KeyServerSecret:
        return cls(bls.random_scalar(rng))

    @classmethod
    def from_bytes(cls, data: bytes) -> KeyServerSecret:
        """A 32-byte big-endian canonical scalar (the seal-cli ``genkey`` format)."""
        return cls(bls.scalar_from_bytes(data))

    @classmethod
    def from_seed(cls, seed: bytes, derivation_index: int) -> KeyServerSecret:
        """Permissioned-mode derivation: OS2IP(HKDF-SHA3-256(seed, info=BE64(index), L=64)) mod r."""
        if len(seed) != MASTER_SEED_BYTES:
            raise ValueError("a master seed is 32 bytes")
        okm = HKDF(
            algorithm=hashes.SHA3_256(),
            length=HKDF_OUTPUT_BYTES,
            salt=None,
            info=struct.pack(">Q", derivation_index),
        ).derive(seed)
        return cls(bls.Scalar.from_be_bytes_mod_order(okm))

    def to_bytes(self) -> bytes:
        return bls.scalar_to_bytes(self.master_key)

    @cached_property
    def public_key(self) -> bytes:
        return bls.g2_to_bytes(bls.g2_generator() * self.master_key)

    def extract_point(self, full_id: bytes) -> bls.G1Point:
        return kdf.identity_point(full_id) * self.master_key

    def extract(self, full_id: bytes) -> bytes:
        """The user secret key (48 bytes) for ``package_id ‖ inner_id``."""
        return bls.g1_to_bytes(self.extract_point(full_id))

    def proof_of_possession(self, object_id: bytes) -> bytes:
        """BLS signature on ``DST_POP ‖ public key ‖ object id`` (served by ``GET /v1/service``)."""
        message = kdf.DST_POP + self.public_key + bytes(object_id)
        return bls.g1_to_bytes(bls.hash_to_g1(message) * self.master_key)

    def __repr__(self) -> str:
        return "KeyServerSecret(<redacted>)"


def verify_user_secret_key(user_secret_key: bytes | bls.G1Point, full_id: bytes, public_key: bytes) -> bool:
    """``e(usk, g2) == e(H1(full_id), PK)``; false for malformed input too."""
    try:
        usk = user_secret_key if isinstance(user_secret_key, bls.G1Point) else bls.g1_from_bytes(user_secret_key)
        pk = bls.g2_from_bytes(public_key)
    except Exception:  # noqa: BLE001 - any decoding failure means "not valid"
        return False
    return bls.pairings_equal(usk, bls.g2_generator(), kdf.identity_point(full_id), pk)


def verify_proof_of_possession(pop: bytes, public_key: bytes, object_id: bytes) -> bool:
    try:
        signature = bls.g1_from_bytes(pop)
        pk = bls.g2_from_bytes(public_key)
    except Exception:  # noqa: BLE001
        return False
    message = bls.hash_to_g1(kdf.DST_POP + bytes(public_key) + bytes(object_id))
    return bls.pairings_equal(signature, bls.g2_generator(), message, pk)
