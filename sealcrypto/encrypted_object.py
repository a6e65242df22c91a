"""The BCS ``EncryptedObject`` (version 0) that Seal SDKs write and read.

Layout: version u8 ‖ package_id [32] ‖ id vec<u8> ‖ services vec<([32], u8)> ‖ threshold u8 ‖
IBEEncryptions enum (0 = BonehFranklinBLS12381 {nonce [96], shares vec<[32]>, randomness [32]}) ‖
Ciphertext enum (0 Aes256Gcm {blob, aad opt}, 1 Hmac256Ctr {blob, aad opt, mac [32]}, 2 Plain).
Parsing enforces size caps and structural consistency; group elements are decoded at decryption.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from chain import bcs
from chain.bcs import BcsError, BcsReader
from sealcrypto.errors import InvalidCiphertext

SUPPORTED_VERSION = 0
MAX_OBJECT_BYTES = 64 * 1024 * 1024
MAX_INNER_ID_BYTES = 1024
MAX_AAD_BYTES = 64 * 1024
MAX_SERVICES = 255
NONCE_BYTES = 96
SHARE_BYTES = 32
OBJECT_ID_BYTES = 32
MAC_BYTES = 32
BONEH_FRANKLIN_BLS12381 = 0


class DemKind(IntEnum):
    AES_256_GCM = 0
    HMAC_256_CTR = 1
    PLAIN = 2


@dataclass(frozen=True)
class KeyServerSlot:
    """One share slot: the key server's object id and the share's x-coordinate."""

    object_id: bytes
    index: int


@dataclass(frozen=True)
class Ciphertext:
    kind: DemKind
    blob: bytes = b""
    aad: bytes | None = None
    mac: bytes | None = None


@dataclass(frozen=True)
class BonehFranklinShares:
    nonce: bytes
    encrypted_shares: tuple[bytes, ...]
    encrypted_randomness: bytes


@dataclass(frozen=True)
class EncryptedObject:
    version: int
    package_id: bytes
    inner_id: bytes
    services: tuple[KeyServerSlot, ...]
    threshold: int
    shares: BonehFranklinShares
    ciphertext: Ciphertext

    @property
    def full_id(self) -> bytes:
        return self.package_id + self.inner_id

    @property
    def object_ids(self) -> tuple[bytes, ...]:
        """Key-server object ids in services order (duplicates kept: weights)."""
        return tuple(slot.object_id for slot in self.services)

    @classmethod
    def from_bytes(cls, raw: bytes, *, max_bytes: int = MAX_OBJECT_BYTES) -> EncryptedObject:
        if not isinstance(raw, (bytes, bytearray, memoryview)):
            raise InvalidCiphertext("an encrypted object is bytes")
        if len(raw) > max_bytes:
            raise InvalidCiphertext(f"encrypted object exceeds {max_bytes} bytes")
        try:
            return _parse(BcsReader(bytes(raw)), max_bytes)
        except BcsError as exc:
            raise InvalidCiphertext(f"malformed encrypted object: {exc}") from None

    def to_bytes(self) -> bytes:
        _check_consistency(self)
        parts = [
            bcs.u8(self.version),
            self.package_id,
            bcs.byte_vector(self.inner_id),
            bcs.vector([slot.object_id + bcs.u8(slot.index) for slot in self.services]),
            bcs.u8(self.threshold),
            bcs.uleb128(BONEH_FRANKLIN_BLS12381),
            self.shares.nonce,
            bcs.vector(list(self.shares.encrypted_shares)),
            self.shares.encrypted_randomness,
            bcs.uleb128(int(self.ciphertext.kind)),
        ]
        ciphertext = self.ciphertext
        if ciphertext.kind != DemKind.PLAIN:
            aad = None if ciphertext.aad is None else bcs.byte_vector(ciphertext.aad)
            parts += [bcs.byte_vector(ciphertext.blob), bcs.option(aad)]
        if ciphertext.kind == DemKind.HMAC_256_CTR:
            parts.append(ciphertext.mac or b"")
        return b"".join(parts)


def _parse(reader: BcsReader, max_bytes: int) -> EncryptedObject:
    version = reader.u8()
    if version != SUPPORTED_VERSION:
        raise InvalidCiphertext(f"unsupported encrypted object version {version}")
    package_id = reader.fixed(OBJECT_ID_BYTES)
    inner_id = reader.byte_vector(MAX_INNER_ID_BYTES)
    service_count = reader.uleb128()
    if service_count > MAX_SERVICES:
        raise InvalidCiphertext("too many key-server slots")
    services = tuple(
        KeyServerSlot(object_id=reader.fixed(OBJECT_ID_BYTES), index=reader.u8())
        for _ in range(service_count)
    )
    threshold = reader.u8()
    scheme = reader.uleb128()
    if scheme != BONEH_FRANKLIN_BLS12381:
        raise InvalidCiphertext(f"unsupported IBE scheme tag {scheme}")
    nonce = reader.fixed(NONCE_BYTES)
    share_count = reader.uleb128()
    if share_count > MAX_SERVICES:
        raise InvalidCiphertext("too many encrypted shares")
    encrypted_shares = tuple(reader.fixed(SHARE_BYTES) for _ in range(share_count))
    shares = BonehFranklinShares(nonce, encrypted_shares, reader.fixed(SHARE_BYTES))
    kind_tag = reader.uleb128()
    if kind_tag not in DemKind._value2member_map_:
        raise InvalidCiphertext(f"unsupported ciphertext tag {kind_tag}")
    kind = DemKind(kind_tag)
    ciphertext = Ciphertext(kind=kind)
    if kind != DemKind.PLAIN:
        blob = reader.byte_vector(max_bytes)
        aad = reader.byte_vector(MAX_AAD_BYTES) if reader.option_tag() else None
        mac = reader.fixed(MAC_BYTES) if kind == DemKind.HMAC_256_CTR else None
        ciphertext = Ciphertext(kind=kind, blob=blob, aad=aad, mac=mac)
    reader.finish()
    obj = EncryptedObject(version, package_id, inner_id, services, threshold, shares, ciphertext)
    _check_consistency(obj)
    return obj


def _check_consistency(obj: EncryptedObject) -> None:
    if obj.version != SUPPORTED_VERSION:
        raise InvalidCiphertext(f"unsupported encrypted object version {obj.version}")
    if len(obj.package_id) != OBJECT_ID_BYTES or len(obj.shares.nonce) != NONCE_BYTES:
        raise InvalidCiphertext("bad package id or nonce length")
    if not obj.services or len(obj.services) > MAX_SERVICES:
        raise InvalidCiphertext("an object needs 1..255 key-server slots")
    if len(obj.shares.encrypted_shares) != len(obj.services):
        raise InvalidCiphertext("one encrypted share per key-server slot is required")
    if not 1 <= obj.threshold <= len(obj.services):
        raise InvalidCiphertext("threshold must be between 1 and the number of slots")
    indices = [slot.index for slot in obj.services]
    if 0 in indices or len(set(indices)) != len(indices):
        raise InvalidCiphertext("share indices must be distinct and non-zero")
    if any(len(slot.object_id) != OBJECT_ID_BYTES for slot in obj.services):
        raise InvalidCiphertext("key-server object ids are 32 bytes")
    if any(len(share) != SHARE_BYTES for share in obj.shares.encrypted_shares):
        raise InvalidCiphertext("encrypted shares are 32 bytes")
    if len(obj.shares.encrypted_randomness) != SHARE_BYTES:
        raise InvalidCiphertext("encrypted randomness is 32 bytes")
    if obj.ciphertext.kind == DemKind.HMAC_256_CTR and len(obj.ciphertext.mac or b"") != MAC_BYTES:
        raise InvalidCiphertext("HMAC-CTR ciphertexts carry a 32-byte MAC")
