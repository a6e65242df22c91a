"""chain.move_json: both Sui JSON renderings of Move values."""

from __future__ import annotations

import pytest

from chain import move_json
from chain.errors import ChainProtocolError


class TestAsBytes:
    def test_number_array_and_base64_agree(self):
        assert move_json.as_bytes([1, 2, 255]) == move_json.as_bytes("AQL/") == b"\x01\x02\xff"

    def test_rejects_out_of_range_element(self):
        with pytest.raises(ChainProtocolError, match="outside 0..255"):
            move_json.as_bytes([1, 256])

    def test_rejects_oversized_vector(self):
        with pytest.raises(ChainProtocolError, match="size cap"):
            move_json.as_bytes([0] * 40, max_length=32)

    def test_rejects_bad_base64(self):
        with pytest.raises(ChainProtocolError, match="base64"):
            move_json.as_bytes("not base64!")


class TestAsInt:
    def test_string_and_number(self):
        assert move_json.as_int("18446744073709551615") == 2**64 - 1 and move_json.as_int(7) == 7

    def test_rejects_overflow_bool_and_sign(self):
        for bad in ("18446744073709551616", True, "-1", 1.5):
            with pytest.raises(ChainProtocolError):
                move_json.as_int(bad)


class TestStructs:
    def test_vec_map_in_both_renderings(self):
        jsonrpc = {"type": "0x2::vec_map::VecMap", "fields": {"contents": [
            {"type": "0x2::vec_map::Entry", "fields": {"key": "a", "value": "1"}}]}}
        graphql = {"contents": [{"key": "a", "value": "1"}]}
        assert move_json.as_string_map(jsonrpc) == move_json.as_string_map(graphql) == {"a": "1"}

    def test_uid_in_both_renderings(self):
        assert move_json.as_uid({"id": "0x2"}) == move_json.as_uid("0x2") == "0x" + "0" * 63 + "2"

    def test_missing_field_is_a_protocol_error(self):
        with pytest.raises(ChainProtocolError, match="no field 'owner'"):
            move_json.field({}, "owner")

    def test_normalize_type_pads_addresses(self):
        assert move_json.normalize_type("0x2::coin::Coin<0x2::sui::SUI>") == (
            "0x" + "0" * 63 + "2::coin::Coin<0x" + "0" * 63 + "2::sui::SUI>")
