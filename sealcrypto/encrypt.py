"""Seal encryption (``seal_encrypt`` of Seal's ``lib.rs``): threshold BF-IBE KEM + DEM.

(1) random base key K; (2) Shamir-split K with x = 1..n; (3) one scalar r, nonce = g2^r,
share_i XOR KDF(e(H1(id)^r, PK_i), nonce, H1(id), object_id_i, i); (4) encrypt r under
DeriveKey(0, …); (5) DEM key = DeriveKey(1, …).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sealcrypto import bls, dem, kdf, shamir
from sealcrypto.encrypted_object import (
    MAX_SERVICES,
    BonehFranklinShares,
    Ciphertext,
    DemKind,
    EncryptedObject,
    KeyServerSlot,
)
from sealcrypto.errors import InvalidKey

BASE_KEY_BYTES = 32


@dataclass(frozen=True)
class KeyServerPublic:
    """A key server as an encryptor sees it: object id (32 bytes) and master public key (G2, 96 bytes).

    List a server several times to give it several shares (weight).
    """

    object_id: bytes
    public_key: bytes

    def __post_init__(self) -> None:
        if len(self.object_id) != kdf.OBJECT_ID_BYTES:
            raise InvalidKey("a key-server object id is 32 bytes")
        if len(self.public_key) != bls.G2_BYTES:
            raise InvalidKey("a key-server public key is 96 bytes")

    @classmethod
    def from_hex(cls, object_id: str, public_key: bytes) -> KeyServerPublic:
        text = object_id[2:] if object_id.lower().startswith("0x") else object_id
        return cls(bytes.fromhex(text.rjust(64, "0")), bytes(public_key))


def encrypt(
    *,
    package_id: bytes,
    inner_id: bytes,
    key_servers: Sequence[KeyServerPublic],
    threshold: int,
    plaintext: bytes,
    aad: bytes | None = b"",
    dem_kind: DemKind = DemKind.AES_256_GCM,
    rng: Callable[[int], bytes] = os.urandom,
) -> bytes:
    """Encrypt ``plaintext`` for ``package_id ‖ inner_id``; returns the BCS EncryptedObject.

    ``aad=b""`` writes ``Some([])`` like the TS SDK; ``None`` writes no AAD (decrypts the same).
    """
    obj, _ = encrypt_object(
        package_id=package_id,
        inner_id=inner_id,
        key_servers=key_servers,
        threshold=threshold,
        plaintext=plaintext,
        aad=aad,
        dem_kind=dem_kind,
        rng=rng,
    )
    return obj.to_bytes()


def encrypt_object(
    *,
    package_id: bytes,
    inner_id: bytes,
    key_servers: Sequence[KeyServerPublic],
    threshold: int,
    plaintext: bytes,
    aad: bytes | None = b"",
    dem_kind: DemKind = DemKind.AES_256_GCM,
    rng: Callable[[int], bytes] = os.urandom,
) -> tuple[EncryptedObject, bytes]:
    """Like ``encrypt`` but returns the parsed object and the DEM key (Plain mode's output)."""
    count = len(key_servers)
    if not 1 <= threshold <= count <= MAX_SERVICES:
        raise ValueError("need 1 <= threshold <= number of key servers <= 255")
    identity = kdf.full_id(package_id, inner_id)
    public_keys = [bls.g2_from_bytes(server.public_key) for server in key_servers]
    object_ids = [server.object_id for server in key_servers]

    base_key = rng(BASE_KEY_BYTES)
    shares = shamir.split(base_key, threshold, count, rng)
    services = tuple(KeyServerSlot(object_ids[n], shares[n].index) for n in range(count))

    randomness = bls.random_scalar(rng)
    nonce = bls.g2_generator() * randomness
    gid = kdf.identity_point(identity)
    gid_r = gid * randomness
    encrypted_shares = tuple(
        kdf.xor(
            shares[n].value,
            kdf.kdf(bls.pairing(gid_r, public_keys[n]), nonce, gid, object_ids[n], shares[n].index),
        )
        for n in range(count)
    )
    randomness_key = kdf.derive_key(
        kdf.KeyPurpose.ENCRYPTED_RANDOMNESS, base_key, encrypted_shares, threshold, object_ids
    )
    dem_key = kdf.derive_key(kdf.KeyPurpose.DEM, base_key, encrypted_shares, threshold, object_ids)
    ibe = BonehFranklinShares(
        nonce=bls.g2_to_bytes(nonce),
        encrypted_shares=encrypted_shares,
        encrypted_randomness=kdf.xor(bls.scalar_to_bytes(randomness), randomness_key),
    )
    obj = EncryptedObject(
        version=0,
        package_id=bytes(package_id),
        inner_id=bytes(inner_id),
        services=services,
        threshold=threshold,
        shares=ibe,
        ciphertext=_encapsulate(dem_kind, dem_key, plaintext, aad),
    )
    return obj, dem_key


def _encapsulate(kind: DemKind, key: bytes, plaintext: bytes, aad: bytes | None) -> Ciphertext:
    aad_bytes = b"" if aad is None else bytes(aad)
    if kind == DemKind.AES_256_GCM:
        return Ciphertext(kind, dem.aes_gcm_encrypt(key, plaintext, aad_bytes), aad)
    if kind == DemKind.HMAC_256_CTR:
        blob, mac = dem.hmac_ctr_encrypt(key, plaintext, aad_bytes)
        return Ciphertext(kind, blob, aad, mac)
    return Ciphertext(DemKind.PLAIN)
