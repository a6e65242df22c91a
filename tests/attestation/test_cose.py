import cbor2
import pytest

from attestation.cose import ES384_PROTECTED_HEADER, MAX_DOCUMENT_SIZE, CoseSign1, sig_structure
from attestation.errors import DecodeError

PAYLOAD = b"\xa1\x61a\x01"
SIGNATURE = bytes(range(96))


def envelope(*items) -> bytes:
    return cbor2.dumps(list(items))


class TestCoseSign1:
    def test_rejects_input_over_the_cap(self):
        with pytest.raises(DecodeError, match="more than the 16384 allowed"):
            CoseSign1.from_bytes(b"\x00" * (MAX_DOCUMENT_SIZE + 1))

    def test_rejects_wrong_item_count(self):
        with pytest.raises(DecodeError, match="array of 4 items"):
            CoseSign1.from_bytes(envelope(ES384_PROTECTED_HEADER, {}, PAYLOAD))

    def test_rejects_other_algorithms(self):
        es256 = cbor2.dumps({1: -7})
        with pytest.raises(DecodeError, match=r"exactly \{1: -35\}"):
            CoseSign1.from_bytes(envelope(es256, {}, PAYLOAD, SIGNATURE))

    def test_rejects_extra_protected_parameters(self):
        extra = cbor2.dumps({1: -35, 4: b"kid"})
        with pytest.raises(DecodeError, match="protected header"):
            CoseSign1.from_bytes(envelope(extra, {}, PAYLOAD, SIGNATURE))

    def test_rejects_a_non_empty_unprotected_header(self):
        with pytest.raises(DecodeError, match="unprotected header must be an empty map"):
            CoseSign1.from_bytes(envelope(ES384_PROTECTED_HEADER, {4: b"kid"}, PAYLOAD, SIGNATURE))

    @pytest.mark.parametrize("length", [0, 64, 95, 97, 104])
    def test_rejects_signatures_that_are_not_96_bytes(self, length):
        with pytest.raises(DecodeError, match="96 bytes"):
            CoseSign1.from_bytes(envelope(ES384_PROTECTED_HEADER, {}, PAYLOAD, bytes(length)))

    def test_rejects_an_empty_payload(self):
        with pytest.raises(DecodeError, match="payload must be a byte string"):
            CoseSign1.from_bytes(envelope(ES384_PROTECTED_HEADER, {}, b"", SIGNATURE))

    def test_rejects_a_tag_other_than_18(self):
        tagged = cbor2.dumps(cbor2.CBORTag(98, [ES384_PROTECTED_HEADER, {}, PAYLOAD, SIGNATURE]))
        with pytest.raises(DecodeError, match="tag 98 is not allowed"):
            CoseSign1.from_bytes(tagged)

    def test_decodes_untagged_and_tag_18_alike(self):
        raw = envelope(ES384_PROTECTED_HEADER, {}, PAYLOAD, SIGNATURE)
        untagged = CoseSign1.from_bytes(raw)
        assert untagged == CoseSign1.from_bytes(b"\xd2" + raw)
        assert untagged.payload == PAYLOAD and untagged.signature == SIGNATURE
        assert untagged.to_bytes() == raw


class TestSigStructure:
    def test_matches_rfc9052_layout(self):
        expected = b"\x84\x6aSignature1\x44\xa1\x01\x38\x22\x40\x44\xa1\x61a\x01"
        assert sig_structure(ES384_PROTECTED_HEADER, PAYLOAD) == expected

    def test_signed_bytes_use_the_received_bytes(self):
        cose = CoseSign1(protected=ES384_PROTECTED_HEADER, payload=PAYLOAD, signature=SIGNATURE)
        assert cose.signed_bytes() == sig_structure(ES384_PROTECTED_HEADER, PAYLOAD)
