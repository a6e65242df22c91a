import cbor2
import pytest

from attestation.errors import DecodeError
from attestation.strict_cbor import MAX_NESTING_DEPTH, loads


class TestLoads:
    def test_rejects_trailing_bytes(self):
        with pytest.raises(DecodeError, match="1 trailing bytes"):
            loads(b"\x01\x02", max_size=100)

    def test_rejects_oversized_input(self):
        with pytest.raises(DecodeError, match="more than the 4 allowed"):
            loads(cbor2.dumps(b"12345"), max_size=4)

    def test_rejects_empty_input(self):
        with pytest.raises(DecodeError, match="empty"):
            loads(b"", max_size=10)

    @pytest.mark.parametrize("encoded", [b"\xc2\x41\x05", b"\xc1\x01", b"\xa1\x01\xd8\x18\x40"])
    def test_rejects_tags_such_as_bignums(self, encoded):
        # cbor2 alone would turn c2 41 05 into the int 5.
        with pytest.raises(DecodeError, match="tags are not allowed"):
            loads(encoded, max_size=100)

    def test_rejects_a_tag_other_than_the_allowed_top_tag(self):
        with pytest.raises(DecodeError, match="tag 17 is not allowed"):
            loads(b"\xd1\x80", max_size=100, allowed_top_tag=18)

    @pytest.mark.parametrize("encoded", [cbor2.dumps(1.5), b"\xf7", b"\xf8\x20"])
    def test_rejects_floats_undefined_and_other_simple_values(self, encoded):
        with pytest.raises(DecodeError, match="floats, undefined"):
            loads(encoded, max_size=100)

    def test_rejects_indefinite_length_strings(self):
        with pytest.raises(DecodeError, match="additional information 31"):
            loads(b"\x5f\x41\x00\xff", max_size=100)

    def test_rejects_duplicate_keys_in_definite_and_indefinite_maps(self):
        with pytest.raises(DecodeError, match="Duplicate"):
            loads(b"\xa2\x01\x02\x01\x03", max_size=100)
        with pytest.raises(DecodeError, match="Duplicate"):
            loads(b"\xbf\x61a\x01\x61a\x02\xff", max_size=100)

    def test_rejects_an_indefinite_map_without_break_or_with_a_dangling_key(self):
        with pytest.raises(DecodeError, match="no break byte"):
            loads(b"\xbf\x01\x02", max_size=100)
        with pytest.raises(DecodeError, match="key without a value"):
            loads(b"\xbf\x01\xff", max_size=100)

    def test_rejects_truncated_strings_and_containers(self):
        with pytest.raises(DecodeError, match="runs past"):
            loads(b"\x45\x00", max_size=100)
        with pytest.raises(DecodeError, match="longer than the input"):
            loads(b"\x9a\xff\xff\xff\xff", max_size=100)

    def test_rejects_deep_nesting(self):
        with pytest.raises(DecodeError, match="too deep"):
            loads(b"\x81" * (MAX_NESTING_DEPTH + 2) + b"\x00", max_size=100)

    def test_accepts_the_nsm_subset(self):
        value = {"a": [1, -2, b"x", None, True, False], "b": {0: b"\x00" * 48}}
        assert loads(cbor2.dumps(value), max_size=1000) == value

    def test_accepts_an_indefinite_outer_map(self):
        assert loads(b"\xbf\x61a\xa1\x00\x41\x01\xff", max_size=100) == {"a": {0: b"\x01"}}

    def test_unwraps_the_allowed_top_tag(self):
        assert loads(b"\xd2\x82\x01\x02", max_size=100, allowed_top_tag=18) == [1, 2]
