"""The published user_data layout of memwal-enclave attestation documents (version 1).

Fixed size, 116 bytes, big-endian where it matters (no integers in v1)::

    offset  size  field
         0     4  magic and version: ASCII "MWE1"
         4    32  SHA-256 of the TLS certificate's DER SubjectPublicKeyInfo
        36    48  SHA-384 of the canonical runtime configuration JSON (== what PCR16 was extended with)
        84    32  X25519 provisioning public key (raw)
       116        end

The document's ``public_key`` field is the raw 32-byte Ed25519 identity key that signs responses.
A new layout gets a new magic ("MWE2"); decoders refuse unknown magics and wrong sizes.

This module depends on nothing else in ``enclave`` so the attested client (attestation/client.py)
can use the same definition.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from attestation.errors import UserDataError

MAGIC = b"MWE1"
TLS_SPKI_DIGEST_SIZE = 32
CONFIGURATION_DIGEST_SIZE = 48
PROVISIONING_KEY_SIZE = 32
IDENTITY_KEY_SIZE = 32
USER_DATA_SIZE = len(MAGIC) + TLS_SPKI_DIGEST_SIZE + CONFIGURATION_DIGEST_SIZE + PROVISIONING_KEY_SIZE


@dataclass(frozen=True)
class EnclaveUserData:
    """The decoded user_data block."""

    tls_spki_sha256: bytes
    configuration_sha384: bytes
    provisioning_public_key: bytes

    def __post_init__(self) -> None:
        for name, size in (
            ("tls_spki_sha256", TLS_SPKI_DIGEST_SIZE),
            ("configuration_sha384", CONFIGURATION_DIGEST_SIZE),
            ("provisioning_public_key", PROVISIONING_KEY_SIZE),
        ):
            value = getattr(self, name)
            if not isinstance(value, bytes) or len(value) != size:
                raise UserDataError(f"{name} must be {size} bytes")

    def encode(self) -> bytes:
        return MAGIC + self.tls_spki_sha256 + self.configuration_sha384 + self.provisioning_public_key

    @classmethod
    def decode(cls, raw: bytes | None) -> EnclaveUserData:
        """Parse a user_data block; raise UserDataError unless it is exactly a v1 block."""
        if raw is None:
            raise UserDataError("the document carries no user_data")
        if not isinstance(raw, bytes):
            raise UserDataError("user_data must be bytes")
        if raw[: len(MAGIC)] != MAGIC:
            raise UserDataError(f"user_data does not start with {MAGIC.decode()} (unknown layout version)")
        if len(raw) != USER_DATA_SIZE:
            raise UserDataError(f"user_data is {len(raw)} bytes, layout {MAGIC.decode()} has {USER_DATA_SIZE}")
        spki_end = len(MAGIC) + TLS_SPKI_DIGEST_SIZE
        configuration_end = spki_end + CONFIGURATION_DIGEST_SIZE
        return cls(
            tls_spki_sha256=raw[len(MAGIC) : spki_end],
            configuration_sha384=raw[spki_end:configuration_end],
            provisioning_public_key=raw[configuration_end:],
        )

def spki_der(certificate: x509.Certificate) -> bytes:
    """The DER SubjectPublicKeyInfo of ``certificate``."""
    return certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )

def spki_sha256(certificate: x509.Certificate | bytes) -> bytes:
    """SHA-256 of the certificate's DER SubjectPublicKeyInfo (``certificate`` may be DER bytes)."""
    if isinstance(certificate, bytes):
        certificate = x509.load_der_x509_certificate(certificate)
    return hashlib.sha256(spki_der(certificate)).digest()
