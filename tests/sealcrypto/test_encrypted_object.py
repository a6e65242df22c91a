import pytest

from sealcrypto import EncryptedObject
from sealcrypto.encrypted_object import DemKind
from sealcrypto.errors import InvalidCiphertext
from tests.sealcrypto import vectors


class TestParse:
    def test_round_trips_sdk_vectors_byte_for_byte(self):
        for raw in (vectors.TYPESCRIPT_OBJECT, vectors.RUST_CLI_OBJECT, vectors.MOVE_SDK_OBJECT, vectors.MOVE_WEIGHTED_OBJECT):
            assert EncryptedObject.from_bytes(raw).to_bytes() == raw

    def test_typescript_vector_fields(self):
        obj = EncryptedObject.from_bytes(vectors.TYPESCRIPT_OBJECT)
        assert obj.package_id == bytes(32) and obj.inner_id == bytes([1, 2, 3, 4])
        assert obj.threshold == 2 and obj.ciphertext.kind == DemKind.AES_256_GCM
        assert obj.ciphertext.aad == bytes([1, 2, 3, 4])

    def test_rejects_unknown_version(self):
        with pytest.raises(InvalidCiphertext, match="version 1"):
            EncryptedObject.from_bytes(b"\x01" + vectors.TYPESCRIPT_OBJECT[1:])

    @pytest.mark.parametrize("cut", [0, 1, 40, 200, -1])
    def test_rejects_truncation(self, cut):
        with pytest.raises(InvalidCiphertext, match="malformed|version"):
            EncryptedObject.from_bytes(vectors.TYPESCRIPT_OBJECT[:cut])

    def test_rejects_trailing_bytes(self):
        with pytest.raises(InvalidCiphertext, match="trailing"):
            EncryptedObject.from_bytes(vectors.TYPESCRIPT_OBJECT + b"\x00")

    def test_rejects_unknown_ciphertext_tag(self):
        obj = EncryptedObject.from_bytes(vectors.MOVE_SDK_OBJECT)
        raw = obj.to_bytes()
        # Replace the trailing Plain-less HMAC enum tag: rebuild an object with the tag byte changed.
        tag_offset = len(raw) - (len(obj.ciphertext.blob) + 1 + 1 + 1 + len(obj.ciphertext.aad or b"") + 1 + 32)
        assert raw[tag_offset] == DemKind.HMAC_256_CTR
        with pytest.raises(InvalidCiphertext, match="ciphertext tag 7"):
            EncryptedObject.from_bytes(raw[:tag_offset] + b"\x07" + raw[tag_offset + 1 :])

    def test_rejects_unknown_ibe_scheme(self):
        raw = vectors.TYPESCRIPT_OBJECT
        offset = 1 + 32 + 1 + 4 + 1 + 3 * 33 + 1
        assert raw[offset] == 0
        with pytest.raises(InvalidCiphertext, match="IBE scheme tag 1"):
            EncryptedObject.from_bytes(raw[:offset] + b"\x01" + raw[offset + 1 :])

    def test_rejects_zero_threshold_and_duplicate_indices(self):
        raw = bytearray(vectors.TYPESCRIPT_OBJECT)
        threshold_offset = 1 + 32 + 1 + 4 + 1 + 3 * 33
        raw[threshold_offset] = 0
        with pytest.raises(InvalidCiphertext, match="threshold"):
            EncryptedObject.from_bytes(bytes(raw))
        raw = bytearray(vectors.TYPESCRIPT_OBJECT)
        raw[1 + 32 + 1 + 4 + 1 + 32 + 33] = 42  # second slot's index := first slot's
        with pytest.raises(InvalidCiphertext, match="distinct"):
            EncryptedObject.from_bytes(bytes(raw))

    def test_size_cap(self):
        with pytest.raises(InvalidCiphertext, match="exceeds 100 bytes"):
            EncryptedObject.from_bytes(vectors.TYPESCRIPT_OBJECT, max_bytes=100)

    def test_rejects_non_bytes(self):
        with pytest.raises(InvalidCiphertext, match="is bytes"):
            EncryptedObject.from_bytes("text")  # type: ignore[arg-type]
