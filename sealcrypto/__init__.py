"""Seal (Mysten's threshold identity-based encryption) in pure Python.

Boneh–Franklin IBE over BLS12-381 as a KEM for a Shamir-split base key, an AES-256-GCM or
HMAC-SHA3-CTR DEM, and the key-server protocol (session certificates, ElGamal-wrapped keys).

Example::

    from sealcrypto import KeyServerPublic, KeyServerSecret, EncryptedObject, encrypt, decrypt

    servers = [KeyServerSecret.generate() for _ in range(2)]
    public = [KeyServerPublic(bytes([n]) * 32, s.public_key) for n, s in enumerate(servers, 1)]
    blob = encrypt(package_id=pkg, inner_id=owner, key_servers=public, threshold=2, plaintext=b"hi")
    obj = EncryptedObject.from_bytes(blob)
    keys = {p.object_id: s.extract(obj.full_id) for p, s in zip(public, servers)}
    assert decrypt(obj, keys) == b"hi"

Modules: ``bls`` (group encodings), ``gf256``/``shamir``, ``kdf``, ``dem``, ``encrypted_object``,
``encrypt``/``decrypt``, ``elgamal``, ``key_server_secret``, ``session``, ``seal_approve``, ``keyserver_client``.
"""

from sealcrypto.decrypt import decrypt
from sealcrypto.elgamal import ElGamalKeyPair, elgamal_decrypt, elgamal_encrypt
from sealcrypto.encrypt import KeyServerPublic, encrypt, encrypt_object
from sealcrypto.encrypted_object import DemKind, EncryptedObject
from sealcrypto.errors import (
    DecryptError,
    InvalidCiphertext,
    InvalidKey,
    InvalidTransaction,
    KeyServerError,
    NotEnoughShares,
    SealError,
    SessionError,
    SessionExpired,
)
from sealcrypto.key_server_secret import KeyServerSecret, verify_user_secret_key
from sealcrypto.keyserver_client import KeyServerClient, KeyServerEndpoint, decrypt_objects
from sealcrypto.seal_approve import build_seal_approve_ptb
from sealcrypto.session import Certificate, SessionKey

__all__ = [
    "Certificate",
    "DecryptError",
    "DemKind",
    "ElGamalKeyPair",
    "EncryptedObject",
    "InvalidCiphertext",
    "InvalidKey",
    "InvalidTransaction",
    "KeyServerClient",
    "KeyServerEndpoint",
    "KeyServerError",
    "KeyServerPublic",
    "KeyServerSecret",
    "NotEnoughShares",
    "SealError",
    "SessionError",
    "SessionExpired",
    "SessionKey",
    "build_seal_approve_ptb",
    "decrypt",
    "decrypt_objects",
    "elgamal_decrypt",
    "elgamal_encrypt",
    "encrypt",
    "encrypt_object",
    "verify_user_secret_key",
]
