"""Seal decryption (``seal_decrypt`` of Seal's ``lib.rs``) from user secret keys.

Steps: (1) structural checks and enough keys, else ``NotEnoughShares``; (2) per available slot
share = encrypted_share XOR KDF(e(usk, nonce), …); (3) K = Lagrange at 0; (4) r = randomness XOR
DeriveKey(0, K, …) must be canonical with g2^r == nonce; (5) optionally, with every public key,
recompute all slots from r and require them on the interpolated polynomial; (6) DEM-decrypt.
Anything that fails after (1) is the opaque ``DecryptError``. Keys are assumed already verified
against the key servers' public keys (``KeyServerClient`` does that).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from sealcrypto import bls, dem, kdf, shamir
from sealcrypto.encrypted_object import DemKind, EncryptedObject
from sealcrypto.errors import DecryptError, InvalidCiphertext, InvalidKey, NotEnoughShares

UserSecretKey = bytes | bls.G1Point


def decrypt(
    obj: EncryptedObject | bytes,
    user_secret_keys: Mapping[bytes, UserSecretKey],
    *,
    public_keys: Sequence[bytes] | None = None,
) -> bytes:
    """Decrypt ``obj`` with ``{key-server object id: usk (48 bytes or G1Point)}``.

    ``public_keys`` (one per services slot, in order) turns on the share-consistency check, needed
    only when the encryptor is not trusted. Plain-mode objects return the DEM key.
    """
    if not isinstance(obj, EncryptedObject):
        obj = EncryptedObject.from_bytes(obj)
    available = [n for n, slot in enumerate(obj.services) if slot.object_id in user_secret_keys]
    if len(available) < obj.threshold:
        raise NotEnoughShares(f"{len(available)} of {obj.threshold} required key-server shares")
    if public_keys is not None and len(public_keys) != len(obj.services):
        raise InvalidKey("one public key per key-server slot is required")
    try:
        nonce = bls.g2_from_bytes(obj.shares.nonce)
    except InvalidKey:
        raise InvalidCiphertext("nonce is not a G2 element") from None
    keys = {oid: _usk(user_secret_keys[oid]) for oid in {obj.services[n].object_id for n in available}}

    gid = kdf.identity_point(obj.full_id)
    shares = []
    for n in available:
        slot = obj.services[n]
        key = kdf.kdf(bls.pairing(keys[slot.object_id], nonce), nonce, gid, slot.object_id, slot.index)
        shares.append(shamir.Share(slot.index, kdf.xor(obj.shares.encrypted_shares[n], key)))

    object_ids = obj.object_ids
    encrypted = obj.shares.encrypted_shares
    if public_keys is None:
        base_key = shamir.combine(shares)
    else:
        polynomial = shamir.interpolate(shares)
        base_key = polynomial(0)
    randomness = _recover_randomness(obj, base_key, nonce)
    if public_keys is not None:
        _check_share_consistency(obj, public_keys, randomness, nonce, gid, polynomial)

    dem_key = kdf.derive_key(kdf.KeyPurpose.DEM, base_key, encrypted, obj.threshold, object_ids)
    ciphertext = obj.ciphertext
    aad = ciphertext.aad or b""
    if ciphertext.kind == DemKind.AES_256_GCM:
        return dem.aes_gcm_decrypt(dem_key, ciphertext.blob, aad)
    if ciphertext.kind == DemKind.HMAC_256_CTR:
        return dem.hmac_ctr_decrypt(dem_key, ciphertext.blob, aad, ciphertext.mac or b"")
    return dem_key


def _recover_randomness(obj: EncryptedObject, base_key: bytes, nonce: bls.G2Point) -> bls.Scalar:
    randomness_key = kdf.derive_key(
        kdf.KeyPurpose.ENCRYPTED_RANDOMNESS,
        base_key,
        obj.shares.encrypted_shares,
        obj.threshold,
        obj.object_ids,
    )
    try:
        randomness = bls.scalar_from_bytes(kdf.xor(obj.shares.encrypted_randomness, randomness_key))
    except InvalidKey:
        raise DecryptError() from None
    # Wrong keys or a forged object give a random r: this check catches both.
    if bls.g2_generator() * randomness != nonce:
        raise DecryptError()
    return randomness


def _check_share_consistency(
    obj: EncryptedObject,
    public_keys: Sequence[bytes],
    randomness: bls.Scalar,
    nonce: bls.G2Point,
    gid: bls.G1Point,
    polynomial: Callable[[int], bytes],
) -> None:
    gid_r = gid * randomness
    for n, slot in enumerate(obj.services):
        public_key = bls.g2_from_bytes(public_keys[n])
        key = kdf.kdf(bls.pairing(gid_r, public_key), nonce, gid, slot.object_id, slot.index)
        share = kdf.xor(obj.shares.encrypted_shares[n], key)
        if share != polynomial(slot.index):
            raise DecryptError()


def _usk(value: UserSecretKey) -> bls.G1Point:
    if isinstance(value, bls.G1Point):
        return value
    return bls.g1_from_bytes(value)
