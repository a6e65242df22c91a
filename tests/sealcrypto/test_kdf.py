import pytest

from sealcrypto import bls, kdf


class TestKdf:
    def test_regression_vector(self):
        # MystenLabs/seal crates/crypto/src/ibe.rs test_kdf_regression (also move/seal/sources/kdf.move test_kdf):
        # guards the 576-byte GT serialization order.
        r = bls.Scalar(12345)
        x = bls.pairing(bls.g1_generator(), bls.g2_generator() * r)
        nonce = bls.g2_generator() * r
        key = kdf.kdf(x, nonce, kdf.identity_point(bytes([0])), bytes(32), 42)
        assert key.hex() == "89befdfd6aecdce1305ddbca891d1c29f0507cfd5225cd6b11e52e60f088ea87"

    def test_index_and_object_id_separate_slots(self):
        x = bls.pairing(bls.g1_generator(), bls.g2_generator())
        gid = kdf.identity_point(b"id")
        base = kdf.kdf(x, bls.g2_generator(), gid, bytes(32), 1)
        assert base != kdf.kdf(x, bls.g2_generator(), gid, bytes(32), 2)
        assert base != kdf.kdf(x, bls.g2_generator(), gid, b"\x01" * 32, 1)

    def test_rejects_bad_object_id(self):
        x = bls.pairing(bls.g1_generator(), bls.g2_generator())
        with pytest.raises(ValueError, match="32 bytes"):
            kdf.kdf(x, bls.g2_generator(), bls.g1_generator(), b"short", 1)


class TestDeriveKey:
    def test_layout_is_sha3_of_documented_inputs(self):
        import hashlib

        shares, ids = [b"\x11" * 32, b"\x22" * 32], [b"\xaa" * 32, b"\xaa" * 32]
        expected = hashlib.sha3_256(
            kdf.DST_DERIVE_KEY + b"K" * 32 + b"\x01" + b"\x02" + b"".join(shares) + b"".join(ids)
        ).digest()
        assert kdf.derive_key(kdf.KeyPurpose.DEM, b"K" * 32, shares, 2, ids) == expected
        assert kdf.derive_key(kdf.KeyPurpose.ENCRYPTED_RANDOMNESS, b"K" * 32, shares, 2, ids) != expected

    def test_share_and_id_counts_must_match(self):
        with pytest.raises(ValueError, match="one encrypted share"):
            kdf.derive_key(kdf.KeyPurpose.DEM, bytes(32), [bytes(32)], 1, [])
