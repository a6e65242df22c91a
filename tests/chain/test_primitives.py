"""The small Sui helpers, checked against the official memwal SDK (code we did not write)."""

import base64
import hashlib

import nacl.signing
import pytest
from memwal import utils as sdk

from chain import bcs
from chain.address import normalize_address, sui_address
from chain.errors import InvalidSignature
from chain.keys import decode_sui_private_key, encode_sui_private_key
from chain.personal_message import sign_personal_message, verify_personal_message

SEED = bytes(range(1, 33))


class TestAddress:
    def test_known_vector(self):
        public_key = bytes(nacl.signing.SigningKey(SEED).verify_key)
        assert sui_address(public_key) == "0x7573c697fa68450f04fa0dee2d39dcdc8a5ccf5db547f3e47638a6f8eeeec110"

    def test_matches_sdk(self):
        public_key = bytes(nacl.signing.SigningKey(SEED).verify_key)
        assert sui_address(public_key) == sdk.delegate_key_to_sui_address(SEED.hex())

    @pytest.mark.parametrize("bad", ["", "0x", "0xzz", "0x" + "1" * 65, "hello"])
    def test_rejects_malformed(self, bad):
        with pytest.raises(ValueError):
            normalize_address(bad)

    def test_pads_short_form(self):
        assert normalize_address("0x2") == "0x" + "0" * 63 + "2"


class TestKeys:
    def test_round_trip_with_sdk(self):
        text = encode_sui_private_key(SEED)
        assert text == sdk.encode_sui_private_key(SEED)
        assert decode_sui_private_key(text) == SEED
        assert decode_sui_private_key(SEED.hex()) == SEED

    @pytest.mark.parametrize("bad", ["suiprivkey1qqqq", "abc", "suiprivkey1" + "q" * 300])
    def test_rejects_malformed(self, bad):
        with pytest.raises(ValueError):
            decode_sui_private_key(bad)

    def test_rejects_bad_checksum(self):
        text = encode_sui_private_key(SEED)
        flipped = text[:-1] + ("q" if text[-1] != "q" else "p")
        with pytest.raises(ValueError):
            decode_sui_private_key(flipped)


class TestPersonalMessage:
    def test_sdk_signature_verifies(self):
        message = b"Accessing keys of package 0x1 for 5 mins"
        signature = sdk.sign_sui_personal_message(message, nacl.signing.SigningKey(SEED))
        assert verify_personal_message(message, signature) == sdk.delegate_key_to_sui_address(SEED.hex())

    def test_ours_equals_sdk(self):
        message = b"hello"
        assert sign_personal_message(SEED, message) == sdk.sign_sui_personal_message(
            message, nacl.signing.SigningKey(SEED)
        )

    def test_tampered_message_fails(self):
        signature = sign_personal_message(SEED, b"hello")
        with pytest.raises(InvalidSignature):
            verify_personal_message(b"hellO", signature)

    @pytest.mark.parametrize("bad", ["", "!!!", base64.b64encode(b"\x01" + bytes(96)).decode()])
    def test_malformed_signature(self, bad):
        with pytest.raises(InvalidSignature):
            verify_personal_message(b"hello", bad)


class TestBcs:
    def test_uleb128_round_trip(self):
        for value in (0, 1, 127, 128, 300, 2**32 - 1):
            reader = bcs.BcsReader(bcs.uleb128(value))
            assert reader.uleb128() == value
            reader.finish()

    def test_non_canonical_uleb(self):
        with pytest.raises(bcs.BcsError):
            bcs.BcsReader(b"\x80\x00").uleb128()

    def test_truncated_vector(self):
        with pytest.raises(bcs.BcsError):
            bcs.BcsReader(b"\x05ab").byte_vector()

    def test_trailing_bytes(self):
        reader = bcs.BcsReader(b"\x01\x02")
        reader.u8()
        with pytest.raises(bcs.BcsError):
            reader.finish()

    def test_sdk_vector_encoding(self):
        assert bcs.byte_vector(b"abc") == sdk.serialize_bcs_byte_vector(b"abc")
        assert hashlib.sha256(bcs.address("0x2")).hexdigest() == hashlib.sha256(bytes(31) + b"\x02").hexdigest()
