"""Sui personal-message signatures (Ed25519): the scheme Seal session keys are certified with.

digest = BLAKE2b-256(intent ``03 00 00`` ‖ BCS vector<u8>(message)); serialized signature =
base64(flag 0x00 ‖ 64-byte signature ‖ 32-byte public key).
"""

from __future__ import annotations

import base64
import binascii
import hashlib

import nacl.exceptions
import nacl.signing

from chain import bcs
from chain.address import ED25519_FLAG, sui_address
from chain.errors import InvalidSignature

PERSONAL_MESSAGE_INTENT = b"\x03\x00\x00"
SERIALIZED_ED25519_SIGNATURE_LENGTH = 1 + 64 + 32
MAX_PERSONAL_MESSAGE_BYTES = 4096


def personal_message_digest(message: bytes) -> bytes:
    return hashlib.blake2b(PERSONAL_MESSAGE_INTENT + bcs.byte_vector(message), digest_size=32).digest()


def sign_personal_message(seed: bytes, message: bytes) -> str:
    key = nacl.signing.SigningKey(seed)
    signature = key.sign(personal_message_digest(message)).signature
    return base64.b64encode(bytes([ED25519_FLAG]) + signature + bytes(key.verify_key)).decode("ascii")


def verify_personal_message(message: bytes, signature_b64: str) -> str:
    """Verify an Ed25519 personal-message signature; return the signer's Sui address."""
    if len(message) > MAX_PERSONAL_MESSAGE_BYTES:
        raise InvalidSignature("personal message too long")
    try:
        raw = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise InvalidSignature("signature is not base64") from exc
    if len(raw) != SERIALIZED_ED25519_SIGNATURE_LENGTH or raw[0] != ED25519_FLAG:
        raise InvalidSignature("only serialized Ed25519 signatures are supported")
    signature, public_key = raw[1:65], raw[65:]
    try:
        nacl.signing.VerifyKey(public_key).verify(personal_message_digest(message), signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError) as exc:
        raise InvalidSignature("personal-message signature does not verify") from exc
    return sui_address(public_key)
