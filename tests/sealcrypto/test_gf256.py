import pytest

from sealcrypto import gf256


class TestFieldOperations:
    def test_seal_field_ops_vector(self):
        # MystenLabs/seal crates/crypto/src/gf256.rs test_field_ops
        assert gf256.add(0x53, 0xCA) == 0x99
        assert gf256.multiply(0x53, 0xCA) == 0x01
        assert gf256.divide(0x53, 0xCA) == 0xB5

    def test_every_non_zero_element_has_an_inverse(self):
        for value in range(1, 256):
            assert gf256.multiply(value, gf256.inverse(value)) == 1

    def test_generator_table_matches_known_prefix(self):
        # First entries of EXP in Seal's gf256.rs (powers of 0x03).
        assert gf256.EXP[:8] == (0x01, 0x03, 0x05, 0x0F, 0x11, 0x33, 0x55, 0xFF)

    def test_division_by_zero(self):
        with pytest.raises(ZeroDivisionError, match="division by zero"):
            gf256.divide(5, 0)
        with pytest.raises(ZeroDivisionError, match="no inverse"):
            gf256.inverse(0)
