"""relayer.validation: Axum-compatible statuses (415 / 400 / 422) and bounds on every field."""

from __future__ import annotations

import base64

import pytest

from relayer.errors import FieldError, InvalidValue, MalformedBody, UnsupportedContentType
from relayer.validation import (
    EMBEDDING_DIMENSIONS,
    MAX_LIMIT,
    base64_field,
    idempotency_key_field,
    is_job_id,
    limit_field,
    namespace_field,
    occurred_at_field,
    parse_json_object,
    string_list_field,
    text_field,
    vector_field,
)


class TestParseJsonObject:
    @pytest.mark.parametrize("content_type", [None, "", "text/plain", "application/x-www-form-urlencoded", "json"])
    def test_wrong_content_type_is_415(self, content_type):
        with pytest.raises(UnsupportedContentType, match="Content-Type: application/json"):
            parse_json_object(b"{}", content_type)

    @pytest.mark.parametrize("body", [b"{", b"{'a': 1}", b"\xff\xfe", b'{"a": NaN}', b'{"a": Infinity}'])
    def test_malformed_is_400(self, body):
        with pytest.raises(MalformedBody, match="Failed to parse the request body as JSON"):
            parse_json_object(body, "application/json")

    @pytest.mark.parametrize("body", [b"[]", b"1", b'"x"', b"null", b""])
    def test_not_an_object_is_422(self, body):
        with pytest.raises(FieldError, match="must be a JSON object"):
            parse_json_object(body, "application/json")

    @pytest.mark.parametrize("content_type", ["application/json", "Application/JSON; charset=utf-8", "application/ld+json"])
    def test_accepts_json_media_types(self, content_type):
        assert parse_json_object(b'{"a": 1, "unknown": true}', content_type) == {"a": 1, "unknown": True}


class TestTextField:
    def test_missing_is_422(self):
        with pytest.raises(FieldError, match="missing field `text`"):
            text_field({}, "text", max_bytes=10)

    def test_wrong_type_is_422(self):
        with pytest.raises(FieldError, match="must be a string"):
            text_field({"text": 5}, "text", max_bytes=10)

    @pytest.mark.parametrize("value", ["", "   ", "\n\t"])
    def test_empty_is_400(self, value):
        with pytest.raises(InvalidValue, match="Text cannot be empty"):
            text_field({"text": value}, "text", max_bytes=10)

    def test_limit_counts_utf8_bytes(self):
        with pytest.raises(InvalidValue, match="11 bytes; the limit is 10"):
            text_field({"text": "é" * 5 + "a"}, "text", max_bytes=10)
        assert text_field({"text": "é" * 5}, "text", max_bytes=10) == "é" * 5


class TestNamespaceField:
    @pytest.mark.parametrize("value,error,match", [
        (5, FieldError, "must be a string"), ("", InvalidValue, "1..256"), ("x" * 257, InvalidValue, "1..256"),
        ("a\x00b", InvalidValue, "control characters"), ("a\x7f", InvalidValue, "control characters"),
    ])
    def test_rejects(self, value, error, match):
        with pytest.raises(error, match=match):
            namespace_field({"namespace": value})

    def test_required(self):
        with pytest.raises(FieldError, match="missing field `namespace`"):
            namespace_field({}, required=True)

    def test_default_and_unicode(self):
        assert namespace_field({}) == "default"
        assert namespace_field({"namespace": None}) == "default"
        assert namespace_field({"namespace": "työ/📁"}) == "työ/📁"


class TestLimitField:
    @pytest.mark.parametrize("value", [0, -1])
    def test_non_positive_is_400(self, value):
        with pytest.raises(InvalidValue, match="positive integer"):
            limit_field({"limit": value}, default=10)

    @pytest.mark.parametrize("value", [1.5, "3", True])
    def test_wrong_type_is_422(self, value):
        with pytest.raises(FieldError, match="must be an integer"):
            limit_field({"limit": value}, default=10)

    def test_default_and_cap(self):
        assert limit_field({}, default=10) == 10
        assert limit_field({"limit": 10_000}, default=10) == MAX_LIMIT
        assert limit_field({"limit": 7}, default=10, cap=5) == 5


class TestVectorField:
    def test_missing_is_422(self):
        with pytest.raises(FieldError, match="missing field `vector`"):
            vector_field({})

    @pytest.mark.parametrize("length", [0, 1535, 1537])
    def test_wrong_length_is_400(self, length):
        with pytest.raises(InvalidValue, match=f"1536 dimensions, got {length}"):
            vector_field({"vector": [0.0] * length})

    @pytest.mark.parametrize("bad", [float("nan"), float("inf"), "1", True, None])
    def test_non_finite_or_non_number_is_400(self, bad):
        vector = [0.0] * EMBEDDING_DIMENSIONS
        vector[7] = bad
        with pytest.raises(InvalidValue, match="finite numbers"):
            vector_field({"vector": vector})

    def test_ints_become_floats(self):
        assert vector_field({"vector": [1] * EMBEDDING_DIMENSIONS})[0] == 1.0


class TestBase64Field:
    @pytest.mark.parametrize("value,match", [("not base64!", "not valid base64"), ("", "is empty"), ("QQ", "not valid base64")])
    def test_rejects(self, value, match):
        with pytest.raises(InvalidValue, match=match):
            base64_field({"data": value}, "data", max_bytes=100)

    def test_too_large(self):
        with pytest.raises(InvalidValue, match="exceeds 10 bytes"):
            base64_field({"data": base64.b64encode(b"x" * 30).decode()}, "data", max_bytes=10)

    def test_round_trip(self):
        assert base64_field({"data": base64.b64encode(b"\x00\x01").decode()}, "data", max_bytes=10) == b"\x00\x01"


class TestOtherFields:
    def test_string_list_bounds(self):
        with pytest.raises(InvalidValue, match="1..20 items, got 0"):
            string_list_field({"ids": []}, "ids", min_items=1, max_items=20)
        with pytest.raises(FieldError, match="array of strings"):
            string_list_field({"ids": [1]}, "ids", min_items=1, max_items=20)
        assert string_list_field({"ids": ["a", "a"]}, "ids", min_items=1, max_items=20) == ["a", "a"]

    @pytest.mark.parametrize("value,ok", [("abc-DEF_123", True), ("", False), ("a/b", False), ("x" * 129, False), ("ü", False)])
    def test_job_id(self, value, ok):
        assert is_job_id(value) is ok

    def test_idempotency_key(self):
        with pytest.raises(InvalidValue, match="printable ASCII"):
            idempotency_key_field({"idempotency_key": "has space"})
        assert idempotency_key_field({}) is None
        assert idempotency_key_field({"idempotency_key": "k-1"}) == "k-1"

    def test_occurred_at(self):
        with pytest.raises(InvalidValue, match="UTC offset"):
            occurred_at_field({"occurred_at": "2024-01-01T00:00:00"})
        with pytest.raises(InvalidValue, match="RFC 3339"):
            occurred_at_field({"occurred_at": "yesterday"})
        assert occurred_at_field({"occurred_at": "2024-01-01T00:00:00Z"}) == "2024-01-01T00:00:00Z"
