import base64
import os

import pytest

from sealcrypto import shamir
from sealcrypto.shamir import Share


class TestCombine:
    def test_seal_combine_byte_vector(self):
        # MystenLabs/seal crates/crypto/src/tss.rs test_combine_byte
        shares = [Share(i, bytes([v])) for i, v in [(1, 2), (2, 3), (3, 4), (4, 5)]]
        assert shamir.combine(shares) == bytes([202])

    def test_typescript_share_vector(self):
        # MystenLabs/seal crates/crypto/src/tss.rs typescript_test_vector (2-of-3, last byte = index)
        raw = [
            base64.b64decode(text)
            for text in (
                "C7rQzQ0iL+L+fBcIAZipXBhtZsUju7ot",
                "lO0Boejog7ARBVXjjLUMqAFP/Iut0ZpZ",
                "FsrVroJ5+eWfw7sFgXq8Y3AWDN2Ogvc9",
            )
        ]
        shares = [Share(item[23], item[:23]) for item in raw]
        expected = b"My super secret message"
        assert shamir.combine(shares[:2]) == expected
        assert shamir.combine(shares[1:]) == expected
        assert shamir.combine(shares) == expected
        assert shamir.combine(shares[:1]) != expected

    def test_rejects_duplicate_zero_and_empty(self):
        with pytest.raises(ValueError, match="distinct"):
            shamir.combine([Share(1, b"a"), Share(1, b"b")])
        with pytest.raises(ValueError, match="distinct"):
            shamir.combine([Share(0, b"a")])
        with pytest.raises(ValueError, match="no shares"):
            shamir.combine([])


class TestSplit:
    def test_any_threshold_subset_recovers(self):
        secret = b"For sale: baby shoes, never worn"
        shares = shamir.split(secret, 3, 5, os.urandom)
        assert [share.index for share in shares] == [1, 2, 3, 4, 5]
        assert shamir.combine(shares[1:4]) == secret
        assert shamir.combine([shares[0], shares[2], shares[4]]) == secret
        assert shamir.combine(shares[:2]) != secret

    def test_interpolate_reproduces_all_shares(self):
        shares = shamir.split(os.urandom(32), 2, 4, os.urandom)
        polynomial = shamir.interpolate(shares[:2])
        assert all(polynomial(share.index) == share.value for share in shares)

    def test_rejects_bad_threshold(self):
        with pytest.raises(ValueError, match="threshold"):
            shamir.split(b"x", 0, 2, os.urandom)
        with pytest.raises(ValueError, match="threshold"):
            shamir.split(b"x", 3, 2, os.urandom)

    def test_share_repr_hides_value(self):
        assert "value=<1 bytes>" in repr(Share(1, b"\x42"))
