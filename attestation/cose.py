"""COSE_Sign1 envelope of a Nitro attestation document (RFC 9052, ES384 only).

The NSM emits ``[protected, unprotected, payload, signature]``, untagged in
every genuine sample, though tag 18 (COSE_Sign1) is allowed. We accept one
shape only: protected = ``{1: -35}`` (ES384), unprotected = ``{}``, and a
96-byte raw ``r‖s`` signature. The signed bytes are rebuilt from the received
``protected`` and ``payload`` bytes, never from re-encoded values.
"""

from __future__ import annotations

from dataclasses import dataclass

import cbor2

from . import strict_cbor
from .errors import DecodeError

COSE_SIGN1_TAG = 18
MAX_DOCUMENT_SIZE = 16 * 1024
MAX_PAYLOAD_SIZE = 16 * 1024
ES384_SIGNATURE_SIZE = 96

# {1: -35}: "alg" = ES384. This byte string is the only encoding AWS emits.
ES384_PROTECTED_HEADER = bytes.fromhex("a1013822")


@dataclass(frozen=True)
class CoseSign1:
    """The four parts of a COSE_Sign1 envelope, as received."""

    protected: bytes
    payload: bytes
    signature: bytes

    @classmethod
    def from_bytes(cls, raw: bytes, *, max_size: int = MAX_DOCUMENT_SIZE) -> CoseSign1:
        """Decode ``raw`` strictly; raise :class:`DecodeError` for any other shape."""
        envelope = strict_cbor.loads(raw, max_size=max_size, allowed_top_tag=COSE_SIGN1_TAG)
        if not isinstance(envelope, list) or len(envelope) != 4:
            raise DecodeError("COSE_Sign1 must be an array of 4 items")
        protected, unprotected, payload, signature = envelope
        if not isinstance(protected, bytes) or protected != ES384_PROTECTED_HEADER:
            raise DecodeError("COSE protected header must be exactly {1: -35} (ES384)")
        if not isinstance(unprotected, dict) or unprotected:
            raise DecodeError("COSE unprotected header must be an empty map")
        if not isinstance(payload, bytes) or not 1 <= len(payload) <= MAX_PAYLOAD_SIZE:
            raise DecodeError(f"COSE payload must be a byte string of 1..{MAX_PAYLOAD_SIZE} bytes")
        if not isinstance(signature, bytes) or len(signature) != ES384_SIGNATURE_SIZE:
            raise DecodeError(f"COSE signature must be {ES384_SIGNATURE_SIZE} bytes (raw r||s)")
        return cls(protected=protected, payload=payload, signature=signature)

    def to_bytes(self) -> bytes:
        """Encode as an untagged COSE_Sign1 array, the way the NSM does."""
        return cbor2.dumps([self.protected, {}, self.payload, self.signature])

    def signed_bytes(self) -> bytes:
        """The ``Sig_structure`` the signature covers."""
        return sig_structure(self.protected, self.payload)


def sig_structure(protected: bytes, payload: bytes) -> bytes:
    """``["Signature1", protected, h'', payload]`` in definite-length CBOR."""
    return cbor2.dumps(["Signature1", protected, b"", payload])
