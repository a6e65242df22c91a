import pytest

from sealcrypto import bls, kdf
from sealcrypto.errors import InvalidKey


class TestHashToG1:
    def test_seal_regression_vector(self):
        # MystenLabs/seal crates/crypto/src/lib.rs test_hash_with_prefix_regression
        # (same value in ts-sdks packages/seal/test/unit/encrypt.test.ts "G1 hash-to-curve regression test")
        point = kdf.identity_point(kdf.full_id(bytes(32), bytes([1, 2, 3, 4])))
        assert bls.g1_to_bytes(point).hex() == (
            "a2f2624fda29c88ccacd286b560572d8c1261a5687e0c0cdbdcbef93bf0ec5c3"
            "73563fac64a2cb5bb326cc6181ee65d7"
        )

    def test_different_identity_gives_different_point(self):
        assert kdf.identity_point(bytes(32) + b"\x01") != kdf.identity_point(bytes(32) + b"\x02")


class TestGtSerialization:
    def test_length_and_identity_layout(self):
        one = bls.gt_to_bytes(bls.GTElement.one())
        assert len(one) == bls.GT_BYTES
        # The unit of Fp12 is c0.c0.c0 = 1: the first big-endian limb ends in 0x01, all else zero.
        assert one[47] == 1 and one.count(0) == bls.GT_BYTES - 1

    def test_bilinear_values_serialize_equal(self):
        a = bls.Scalar(7)
        left = bls.pairing(bls.g1_generator() * a, bls.g2_generator())
        right = bls.pairing(bls.g1_generator(), bls.g2_generator() * a)
        assert bls.gt_to_bytes(left) == bls.gt_to_bytes(right)


class TestDecoding:
    def test_rejects_wrong_lengths(self):
        with pytest.raises(InvalidKey, match="48 compressed bytes"):
            bls.g1_from_bytes(b"\x00" * 47)
        with pytest.raises(InvalidKey, match="96 compressed bytes"):
            bls.g2_from_bytes(b"\x00" * 95)

    def test_rejects_points_off_the_curve(self):
        with pytest.raises(InvalidKey, match="not a valid G1"):
            bls.g1_from_bytes(b"\x80" + b"\x00" * 46 + b"\x05")

    def test_round_trip(self):
        point = bls.g2_generator() * bls.Scalar(99)
        assert bls.g2_from_bytes(bls.g2_to_bytes(point)) == point

    def test_scalar_must_be_canonical(self):
        with pytest.raises(InvalidKey, match="canonical"):
            bls.scalar_from_bytes(bls.CURVE_ORDER.to_bytes(32, "big"))
        assert int(bls.scalar_from_bytes((bls.CURVE_ORDER - 1).to_bytes(32, "big"))) == bls.CURVE_ORDER - 1

    def test_random_scalar_uses_injected_rng(self):
        requests = []

        def rng(n):
            requests.append(n)
            return b"\x01" * n

        assert bls.random_scalar(rng) == bls.random_scalar(lambda n: b"\x01" * n)
        assert requests == [bls.RANDOM_SCALAR_BYTES]
