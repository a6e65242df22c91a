"""Sealed provisioning envelopes: secrets encrypted to an attested enclave's X25519 key.

The operator verifies an attestation document (attestation/client.py), takes the X25519 provisioning
key bound in its user_data, and seals the secrets to it; only that enclave boot can open them. The
recipe offers no choices (like Fernet): X25519 → HKDF-SHA256 → ChaCha20-Poly1305.

Envelope (``MWP1``), all fields fixed size except the ciphertext::

    offset  size  field
         0     4  magic and version: ASCII "MWP1"
         4    32  sender's ephemeral X25519 public key
        36    32  SHA-256 of the attestation document the sender verified
        68    12  ChaCha20-Poly1305 nonce (random)
        80     n  ciphertext ‖ 16-byte tag, n ≤ 65552

    shared  = X25519(ephemeral private, enclave provisioning public)      (all-zero result refused)
    key     = HKDF-SHA256(ikm=shared, salt=document SHA-256,
                          info="memwal-enclave/provision/v1" ‖ ephemeral public ‖ enclave public, L=32)
    aad     = "memwal-enclave/provision/v1" ‖ envelope[0:80]
    plaintext = canonical JSON object {NAME: value} (sorted keys, no whitespace), NAME in the allowlist

Every opening failure raises the same message-less :class:`EnvelopeError` (cf. Fernet's InvalidToken).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from manifest.variables import PROVISIONABLE_SECRETS as PROVISIONABLE_SECRETS  # defined with the other variable classes

MAGIC = b"MWP1"
DOMAIN = b"memwal-enclave/provision/v1"
KEY_SIZE = 32
DIGEST_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16
HEADER_SIZE = len(MAGIC) + KEY_SIZE + DIGEST_SIZE + NONCE_SIZE
MAX_SECRETS_SIZE = 64 * 1024
MAX_ENVELOPE_SIZE = HEADER_SIZE + MAX_SECRETS_SIZE + TAG_SIZE
MAX_SECRET_VALUE_SIZE = 8 * 1024



class EnvelopeError(ValueError):
    """The envelope cannot be opened (malformed, wrong key, tampered, or not valid secrets)."""


@dataclass(frozen=True, repr=False)
class OpenedEnvelope:
    """The secrets and the document digest they were sealed against. ``repr`` hides the values."""

    document_sha256: bytes
    secrets: Mapping[str, str]

    def __repr__(self) -> str:
        return f"OpenedEnvelope(document_sha256={self.document_sha256.hex()}, names={sorted(self.secrets)})"


def validate_secrets(secrets: Mapping[str, str]) -> dict[str, str]:
    """Check names against the allowlist and values for size and characters; raise ValueError."""
    if not isinstance(secrets, Mapping) or not secrets:
        raise ValueError("secrets must be a non-empty mapping of NAME to string")
    checked: dict[str, str] = {}
    for name, value in secrets.items():
        if name not in PROVISIONABLE_SECRETS:
            raise ValueError(f"{name!r} is not a provisionable secret (allowed: {', '.join(sorted(PROVISIONABLE_SECRETS))})")
        if not isinstance(value, str) or not value or len(value.encode("utf-8")) > MAX_SECRET_VALUE_SIZE:
            raise ValueError(f"{name} must be a non-empty string of at most {MAX_SECRET_VALUE_SIZE} bytes")
        if "\x00" in value:
            raise ValueError(f"{name} contains a NUL character")
        checked[name] = value
    return checked


def load_secrets_file(data: bytes) -> dict[str, str]:
    """A JSON object ``{"NAME": "value"}`` or ``NAME=value`` lines (``#`` comments); validated."""
    if len(data) > MAX_SECRETS_SIZE:
        raise ValueError(f"secrets file is larger than {MAX_SECRETS_SIZE} bytes")
    text = data.decode("utf-8")
    if text.lstrip().startswith("{"):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            raise ValueError("secrets file is not valid JSON") from None
        if not isinstance(parsed, dict):
            raise ValueError("secrets file must hold a JSON object")
        return validate_secrets(parsed)
    parsed = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        name, separator, value = stripped.partition("=")
        if not separator:
            raise ValueError(f"secrets file line {number} is not NAME=value")
        if name.strip() in parsed:
            raise ValueError(f"secrets file sets {name.strip()} twice")
        parsed[name.strip()] = value.strip()
    return validate_secrets(parsed)


def seal_secrets(
    secrets: Mapping[str, str],
    *,
    recipient_public_key: bytes,
    document_sha256: bytes,
    rng: Callable[[int], bytes] = os.urandom,
) -> bytes:
    """Encrypt ``secrets`` to the enclave's X25519 key, bound to the verified document's SHA-256."""
    if len(recipient_public_key) != KEY_SIZE or len(document_sha256) != DIGEST_SIZE:
        raise ValueError("recipient key and document digest must be 32 bytes each")
    plaintext = json.dumps(validate_secrets(secrets), sort_keys=True, separators=(",", ":")).encode("utf-8")
    if len(plaintext) > MAX_SECRETS_SIZE:
        raise ValueError(f"secrets are larger than {MAX_SECRETS_SIZE} bytes")
    ephemeral = X25519PrivateKey.from_private_bytes(rng(KEY_SIZE))
    ephemeral_public = ephemeral.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    try:
        shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient_public_key))
    except ValueError:
        raise ValueError("the recipient key is not a usable X25519 public key") from None
    header = MAGIC + ephemeral_public + document_sha256 + rng(NONCE_SIZE)
    key = _derive_key(shared, document_sha256, ephemeral_public, recipient_public_key)
    return header + ChaCha20Poly1305(key).encrypt(header[-NONCE_SIZE:], plaintext, DOMAIN + header)


def open_envelope(raw: bytes, *, recipient_private_key: X25519PrivateKey) -> OpenedEnvelope:
    """Decrypt and validate an envelope; raise EnvelopeError (no detail) on any failure."""
    if not isinstance(raw, bytes) or not HEADER_SIZE + TAG_SIZE <= len(raw) <= MAX_ENVELOPE_SIZE:
        raise EnvelopeError()
    if raw[: len(MAGIC)] != MAGIC:
        raise EnvelopeError()
    ephemeral_public = raw[len(MAGIC) : len(MAGIC) + KEY_SIZE]
    document_sha256 = raw[len(MAGIC) + KEY_SIZE : len(MAGIC) + KEY_SIZE + DIGEST_SIZE]
    header = raw[:HEADER_SIZE]
    recipient_public = recipient_private_key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    try:
        shared = recipient_private_key.exchange(X25519PublicKey.from_public_bytes(ephemeral_public))
        key = _derive_key(shared, document_sha256, ephemeral_public, recipient_public)
        plaintext = ChaCha20Poly1305(key).decrypt(header[-NONCE_SIZE:], raw[HEADER_SIZE:], DOMAIN + header)
        secrets = json.loads(plaintext.decode("utf-8"))
        if not isinstance(secrets, dict):
            raise ValueError
        return OpenedEnvelope(document_sha256=document_sha256, secrets=validate_secrets(secrets))
    except (InvalidTag, ValueError, UnicodeDecodeError):
        raise EnvelopeError() from None


def _derive_key(shared: bytes, document_sha256: bytes, ephemeral_public: bytes, recipient_public: bytes) -> bytes:
    if not any(shared):
        raise ValueError("all-zero X25519 shared secret")
    return HKDF(
        algorithm=hashes.SHA256(), length=KEY_SIZE, salt=document_sha256, info=DOMAIN + ephemeral_public + recipient_public
    ).derive(shared)
