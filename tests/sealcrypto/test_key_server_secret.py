import pytest

from sealcrypto import KeyServerSecret, verify_user_secret_key
from sealcrypto.errors import InvalidKey
from sealcrypto.key_server_secret import verify_proof_of_possession


class TestKeyServerSecret:
    def test_hkdf_master_key_regression(self):
        # MystenLabs/seal key-server master key derivation regression (seed 01*32, index 42),
        # as quoted in seal.md §2.5.
        secret = KeyServerSecret.from_seed(bytes([1]) * 32, 42)
        assert secret.to_bytes().hex() == "17d496df95e12b5caec0c4a15b09a5ea41b4fb1cf3ba28f1c6c72556846a6db6"

    def test_extracted_key_verifies_only_for_its_identity_and_server(self):
        secret, other = KeyServerSecret.generate(), KeyServerSecret.generate()
        usk = secret.extract(b"\x00" * 32 + b"id")
        assert verify_user_secret_key(usk, b"\x00" * 32 + b"id", secret.public_key)
        assert not verify_user_secret_key(usk, b"\x00" * 32 + b"other", secret.public_key)
        assert not verify_user_secret_key(usk, b"\x00" * 32 + b"id", other.public_key)
        assert not verify_user_secret_key(b"\x00" * 48, b"id", secret.public_key)

    def test_proof_of_possession(self):
        secret = KeyServerSecret.generate()
        pop = secret.proof_of_possession(b"\x07" * 32)
        assert verify_proof_of_possession(pop, secret.public_key, b"\x07" * 32)
        assert not verify_proof_of_possession(pop, secret.public_key, b"\x08" * 32)

    def test_repr_is_redacted(self):
        secret = KeyServerSecret.from_bytes(bytes(31) + b"\x05")
        assert "5" not in repr(secret) and "redacted" in repr(secret)

    def test_rejects_non_canonical_master_key(self):
        with pytest.raises(InvalidKey, match="canonical"):
            KeyServerSecret.from_bytes(b"\xff" * 32)
