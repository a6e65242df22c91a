from datetime import UTC, datetime

import cbor2
import pytest

from attestation.cose import ES384_PROTECTED_HEADER, CoseSign1
from attestation.document import AttestationDocument, UnknownKeys, timestamp_to_datetime
from attestation.errors import DecodeError

from .conftest import REAL_DOCUMENTS, asset, expectation


def valid_fields() -> dict:
    return {
        "module_id": "i-0123456789abcdef0-enc0123456789abcdef",
        "digest": "SHA384",
        "timestamp": 1767472867402,
        "pcrs": {index: bytes([index]) * 48 for index in range(16)},
        "certificate": b"\x30" * 600,
        "cabundle": [b"\x30" * 500, b"\x30" * 700],
        "public_key": None,
        "user_data": b"",
        "nonce": b"n" * 32,
    }


def document_bytes(fields: dict) -> bytes:
    payload = cbor2.dumps(fields)
    return CoseSign1(protected=ES384_PROTECTED_HEADER, payload=payload, signature=bytes(96)).to_bytes()


def with_field(name, value) -> bytes:
    fields = valid_fields()
    fields[name] = value
    return document_bytes(fields)


class TestFromCose:
    @pytest.mark.parametrize("name", ["module_id", "digest", "timestamp", "pcrs", "certificate", "cabundle"])
    def test_rejects_a_missing_or_null_mandatory_field(self, name):
        fields = valid_fields()
        del fields[name]
        with pytest.raises(DecodeError, match=f"mandatory field '{name}'"):
            AttestationDocument.from_cose(document_bytes(fields))
        with pytest.raises(DecodeError, match=f"mandatory field '{name}'"):
            AttestationDocument.from_cose(with_field(name, None))

    @pytest.mark.parametrize(
        ("name", "value", "message"),
        [
            ("module_id", "", "module_id must be a non-empty"),
            ("module_id", b"bytes", "module_id must be a non-empty"),
            ("digest", "SHA256", "digest must be 'SHA384'"),
            ("timestamp", -1, "timestamp must be a positive integer"),
            ("timestamp", True, "timestamp must be a positive integer"),
            ("timestamp", "1767472867402", "timestamp must be a positive integer"),
            ("pcrs", {}, "pcrs must be a map of 1..32"),
            ("pcrs", {index: bytes(48) for index in range(33)}, "pcrs must be a map of 1..32"),
            ("pcrs", {32: bytes(48)}, "PCR index must be an integer in 0..31"),
            ("pcrs", {-1: bytes(48)}, "PCR index"),
            ("pcrs", {0: bytes(47)}, "PCR0 must be a byte string of 32, 48 or 64"),
            ("pcrs", {0: "00" * 48}, "PCR0 must be a byte string"),
            ("certificate", b"", "certificate must be a byte string of 1..1024"),
            ("certificate", bytes(1025), "certificate must be a byte string of 1..1024"),
            ("cabundle", [], "cabundle must be an array of 1..8"),
            ("cabundle", [bytes(10)] * 9, "cabundle must be an array of 1..8"),
            ("cabundle", [b""], "cabundle entry must be a byte string of 1..1024"),
            ("cabundle", [bytes(1025)], "cabundle entry"),
            ("public_key", bytes(1025), "public_key must be a byte string of 0..1024"),
            ("user_data", "text", "user_data must be a byte string"),
            ("nonce", bytes(1025), "nonce must be a byte string of 0..1024"),
        ],
    )
    def test_rejects_out_of_bounds_fields(self, name, value, message):
        with pytest.raises(DecodeError, match=message):
            AttestationDocument.from_cose(with_field(name, value))

    def test_rejects_non_text_keys(self):
        fields = valid_fields()
        fields[7] = b"x"
        with pytest.raises(DecodeError, match="keys must be text strings"):
            AttestationDocument.from_cose(document_bytes(fields))

    def test_rejects_a_payload_that_is_not_a_map(self):
        raw = CoseSign1(protected=ES384_PROTECTED_HEADER, payload=cbor2.dumps([1]), signature=bytes(96)).to_bytes()
        with pytest.raises(DecodeError, match="payload must be a map"):
            AttestationDocument.from_cose(raw)

    def test_rejects_unknown_keys_when_asked_to(self):
        raw = with_field("future_field", b"x")
        with pytest.raises(DecodeError, match=r"unknown fields \['future_field'\]"):
            AttestationDocument.from_cose(raw, unknown_keys=UnknownKeys.REJECT)

    def test_ignores_unknown_keys_by_default_but_records_them(self):
        document = AttestationDocument.from_cose(with_field("future_field", b"x"))
        assert document.unknown_keys == ("future_field",)
        assert not hasattr(document, "future_field")

    def test_null_optionals_are_absent_and_empty_bytes_are_present(self):
        document = AttestationDocument.from_cose(document_bytes(valid_fields()))
        assert document.unverified_public_key is None
        assert document.unverified_user_data == b""
        assert document.unverified_nonce == b"n" * 32

    def test_omitted_optionals_are_absent(self):
        fields = valid_fields()
        del fields["nonce"], fields["user_data"], fields["public_key"]
        document = AttestationDocument.from_cose(document_bytes(fields))
        assert (document.unverified_nonce, document.unverified_user_data) == (None, None)

    def test_document_is_frozen(self):
        document = AttestationDocument.from_cose(document_bytes(valid_fields()))
        with pytest.raises(AttributeError):
            document.unverified_module_id = "other"  # type: ignore[misc]
        with pytest.raises(TypeError):
            document.unverified_pcrs[0] = bytes(48)  # type: ignore[index]

    @pytest.mark.parametrize("name", REAL_DOCUMENTS)
    def test_decodes_real_documents_as_their_json_says(self, name):
        expected = expectation(name)
        document = AttestationDocument.from_cose(asset(f"{name}.bin"))
        assert document.unverified_module_id == expected["module_id"]
        assert document.unverified_timestamp_ms == expected["expected_timestamp_ms"]
        assert document.unverified_pcrs[0].hex() == expected["expected_pcr0"]
        assert document.unverified_pcrs[8].hex() == expected["expected_pcr8"]
        assert len(document.unverified_cabundle) == 4
        for field in ("nonce", "user_data", "public_key"):
            value = getattr(document, f"unverified_{field}")
            assert (None if value is None else value.hex()) == expected[f"expected_{field}_hex"]
        indefinite = document.envelope.payload[0] == 0xBF
        assert indefinite == (expected["payload_map_encoding"] == "indefinite")


class TestTimestampToDatetime:
    def test_keeps_milliseconds_exactly(self):
        assert timestamp_to_datetime(1767472867402) == datetime(2026, 1, 3, 20, 41, 7, 402000, tzinfo=UTC)
