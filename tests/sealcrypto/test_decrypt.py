import os

import pytest

from sealcrypto import KeyServerPublic, KeyServerSecret, decrypt, encrypt_object
from sealcrypto.encrypted_object import BonehFranklinShares, EncryptedObject
from sealcrypto.errors import DecryptError, InvalidCiphertext, NotEnoughShares
from sealcrypto.key_server_secret import verify_user_secret_key
from tests.sealcrypto import vectors


class TestKnownAnswers:
    def test_typescript_vector_with_all_and_two_keys(self):
        obj = EncryptedObject.from_bytes(vectors.TYPESCRIPT_OBJECT)
        assert [slot.index for slot in obj.services] == [42, 194, 30]
        secrets = [KeyServerSecret.from_bytes(key) for key in vectors.TYPESCRIPT_MASTER_KEYS]
        keys = {slot.object_id: s.extract(obj.full_id) for slot, s in zip(obj.services, secrets)}
        public_keys = [s.public_key for s in secrets]
        assert decrypt(obj, keys, public_keys=public_keys) == vectors.TYPESCRIPT_PLAINTEXT
        two = {oid: keys[oid] for oid in list(keys)[1:]}
        assert decrypt(obj, two) == vectors.TYPESCRIPT_PLAINTEXT
        assert decrypt(obj, two, public_keys=public_keys) == vectors.TYPESCRIPT_PLAINTEXT

    def test_rust_cli_vector_extract_and_decrypt(self):
        obj = EncryptedObject.from_bytes(vectors.RUST_CLI_OBJECT)
        secrets = [KeyServerSecret.from_bytes(key) for key in vectors.RUST_CLI_MASTER_KEYS]
        assert [s.extract(obj.full_id) for s in secrets] == vectors.RUST_CLI_USKS
        keys = dict(zip(vectors.RUST_CLI_OBJECT_IDS, vectors.RUST_CLI_USKS))
        assert decrypt(obj, keys) == vectors.RUST_CLI_PLAINTEXT

    def test_move_sdk_vector(self):
        obj = EncryptedObject.from_bytes(vectors.MOVE_SDK_OBJECT)
        for usk, pk in zip(vectors.MOVE_SDK_USKS, vectors.MOVE_SDK_PUBLIC_KEYS):
            assert verify_user_secret_key(usk, obj.full_id, pk)
        keys = {slot.object_id: usk for slot, usk in zip(obj.services, vectors.MOVE_SDK_USKS)}
        assert decrypt(obj, keys, public_keys=vectors.MOVE_SDK_PUBLIC_KEYS) == bytes([1, 2, 3])

    def test_move_weighted_vector_one_heavy_server_suffices(self):
        obj = EncryptedObject.from_bytes(vectors.MOVE_WEIGHTED_OBJECT)
        heavy, light = (KeyServerSecret.from_bytes(key) for key in vectors.MOVE_WEIGHTED_MASTER_KEYS)
        assert heavy.extract(obj.full_id) == vectors.MOVE_WEIGHTED_USKS[0]
        assert light.extract(obj.full_id) == vectors.MOVE_WEIGHTED_USKS[1]
        heavy_only = {vectors.MOVE_WEIGHTED_HEAVY_SERVER: vectors.MOVE_WEIGHTED_USKS[0]}
        public_keys = [vectors.MOVE_WEIGHTED_PUBLIC_KEYS[n] for n in (0, 0, 1)]
        assert decrypt(obj, heavy_only, public_keys=public_keys) == b"Hello, world!"
        with pytest.raises(NotEnoughShares, match="1 of 2"):
            decrypt(obj, {vectors.MOVE_WEIGHTED_LIGHT_SERVER: vectors.MOVE_WEIGHTED_USKS[1]})


@pytest.fixture(scope="module")
def setup():
    secrets = [KeyServerSecret.generate() for _ in range(3)]
    servers = [KeyServerPublic(bytes([n]) * 32, s.public_key) for n, s in enumerate(secrets, 1)]
    obj, _ = encrypt_object(
        package_id=os.urandom(32), inner_id=os.urandom(32), key_servers=servers, threshold=2, plaintext=b"secret"
    )
    keys = {server.object_id: s.extract(obj.full_id) for server, s in zip(servers, secrets)}
    return obj, keys, [s.public_key for s in secrets]


class TestNegative:

    def test_too_few_keys(self, setup):
        obj, keys, _ = setup
        with pytest.raises(NotEnoughShares, match="1 of 2"):
            decrypt(obj, {bytes([1]) * 32: keys[bytes([1]) * 32]})

    def test_wrong_key_is_opaque(self, setup):
        obj, keys, _ = setup
        wrong = dict(keys)
        wrong[bytes([1]) * 32] = KeyServerSecret.generate().extract(obj.full_id)
        with pytest.raises(DecryptError, match="^decryption failed$"):
            decrypt(obj, wrong)

    def test_tampered_share_detected_by_randomness_check(self, setup):
        obj, keys, _ = setup
        shares = list(obj.shares.encrypted_shares)
        shares[0] = bytes([shares[0][0] ^ 1]) + shares[0][1:]
        tampered = _with_shares(obj, tuple(shares))
        with pytest.raises(DecryptError, match="decryption failed"):
            decrypt(tampered, keys)

    def test_modified_unused_share_is_still_detected(self, setup):
        obj, keys, public_keys = setup
        shares = list(obj.shares.encrypted_shares)
        shares[2] = bytes(32)
        tampered = _with_shares(obj, tuple(shares))
        two = {oid: keys[oid] for oid in (bytes([1]) * 32, bytes([2]) * 32)}
        with pytest.raises(DecryptError, match="decryption failed"):
            decrypt(tampered, two)  # derive_key binds all shares, so even unused ones matter
        with pytest.raises(DecryptError, match="decryption failed"):
            decrypt(tampered, two, public_keys=public_keys)

    def test_tampered_blob(self, setup):
        obj, keys, _ = setup
        blob = bytes([obj.ciphertext.blob[0] ^ 0x80]) + obj.ciphertext.blob[1:]
        tampered = EncryptedObject(**{**obj.__dict__, "ciphertext": type(obj.ciphertext)(obj.ciphertext.kind, blob, obj.ciphertext.aad)})
        with pytest.raises(DecryptError, match="decryption failed"):
            decrypt(tampered, keys)

    def test_bad_nonce_is_invalid_ciphertext(self, setup):
        obj, keys, _ = setup
        shares = BonehFranklinShares(b"\x00" * 96, obj.shares.encrypted_shares, obj.shares.encrypted_randomness)
        with pytest.raises(InvalidCiphertext, match="nonce"):
            decrypt(EncryptedObject(**{**obj.__dict__, "shares": shares}), keys)


def _with_shares(obj, shares):
    ibe = BonehFranklinShares(obj.shares.nonce, shares, obj.shares.encrypted_randomness)
    return EncryptedObject(**{**obj.__dict__, "shares": ibe})
