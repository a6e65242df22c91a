"""relayer.validation and relayer.api_models: Axum-compatible statuses (415 / 400 / 422), bounded JSON, and the
bounds of every request field — each as a value that used to crash the relayer and is now a 4xx naming the field.
"""

from __future__ import annotations

import base64
import json
import re

import pytest

from relayer.api_models import (
    AnalyzeRequest,
    BulkStatusRequest,
    ManualRecallRequest,
    ManualRememberRequest,
    RecallRequest,
    RememberBulkRequest,
    RememberRequest,
    RestoreRequest,
)
from relayer.errors import FieldError, InvalidValue, MalformedBody, UnsupportedContentType
from relayer.validation import (
    EMBEDDING_DIMENSIONS,
    MAX_JSON_DEPTH,
    is_job_id,
    parse_json_object,
    query_integer,
    validate_request,
)

VECTOR = [0.01] * EMBEDDING_DIMENSIONS


def vector_with(index: int, value: object) -> list[object]:
    vector: list[object] = list(VECTOR)
    vector[index] = value
    return vector


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

    @pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 5_000, 200_000])
    def test_deep_nesting_is_400_not_a_recursion_error(self, depth):
        # 200 000 levels used to raise RecursionError out of json.loads (a 500).
        for body in (b'{"a":' * depth + b"1" + b"}" * depth, b'{"a":' + b"[" * depth + b"]" * depth + b"}"):
            with pytest.raises(MalformedBody, match=f"nested deeper than {MAX_JSON_DEPTH} levels"):
                parse_json_object(body, "application/json")

    def test_nesting_up_to_the_limit_is_parsed(self):
        body = b'{"a":' + b"[" * (MAX_JSON_DEPTH - 1) + b"]" * (MAX_JSON_DEPTH - 1) + b"}"
        assert "a" in parse_json_object(body, "application/json")

    @pytest.mark.parametrize("body,field", [
        (b'{"text": "\\ud800x"}', "`text`"),
        (b'{"items": [{"text": "ok"}, {"text": "a\\udfffb"}]}', "`items[1].text`"),
        (b'{"\\ud83d": 1}', "a key in `body`"),
    ])
    def test_lone_surrogates_are_400_naming_the_field(self, body, field):
        with pytest.raises(InvalidValue, match=rf"{re.escape(field)}.* not valid Unicode"):
            parse_json_object(body, "application/json")

    def test_surrogate_pairs_are_fine(self):
        assert parse_json_object(b'{"text": "\\ud83d\\ude00"}', "application/json") == {"text": "😀"}


class TestTextFields:
    def test_missing_is_422(self):
        with pytest.raises(FieldError, match="missing field `text`"):
            validate_request(RememberRequest, {})

    def test_wrong_type_is_422(self):
        with pytest.raises(FieldError, match="`text` must be a string"):
            validate_request(RememberRequest, {"text": 5})

    @pytest.mark.parametrize("value", ["", "   ", "\n\t"])
    def test_empty_is_400(self, value):
        with pytest.raises(InvalidValue, match="Text cannot be empty"):
            validate_request(RememberRequest, {"text": value})
        with pytest.raises(InvalidValue, match="Query cannot be empty"):
            validate_request(RecallRequest, {"query": value})

    def test_limit_counts_utf8_bytes(self):
        with pytest.raises(InvalidValue, match="is 65537 bytes; the limit is 65536 bytes"):
            validate_request(AnalyzeRequest, {"text": "é" * 32768 + "a"})
        assert validate_request(AnalyzeRequest, {"text": "é" * 32768}).text == "é" * 32768


class TestNamespace:
    @pytest.mark.parametrize("value,error,match", [
        (5, FieldError, "must be a string"), ("", InvalidValue, "1..256"), ("x" * 257, InvalidValue, "1..256"),
        ("a\x00b", InvalidValue, "control characters"), ("a\x7f", InvalidValue, "control characters"),
    ])
    def test_rejects(self, value, error, match):
        with pytest.raises(error, match=match):
            validate_request(RememberRequest, {"text": "t", "namespace": value})

    def test_required_where_upstream_requires_it(self):
        with pytest.raises(FieldError, match="missing field `namespace`"):
            validate_request(RestoreRequest, {})

    def test_default_and_unicode(self):
        assert validate_request(RememberRequest, {"text": "t"}).namespace == "default"
        assert validate_request(RememberRequest, {"text": "t", "namespace": None}).namespace == "default"
        assert validate_request(RememberRequest, {"text": "t", "namespace": "työ/📁"}).namespace == "työ/📁"


class TestLimit:
    @pytest.mark.parametrize("value", [0, -1])
    def test_non_positive_is_400(self, value):
        with pytest.raises(InvalidValue, match="positive integer"):
            validate_request(RecallRequest, {"query": "q", "limit": value})

    @pytest.mark.parametrize("value", [1.5, "3", True])
    def test_wrong_type_is_422(self, value):
        with pytest.raises(FieldError, match="`limit` must be an integer"):
            validate_request(RecallRequest, {"query": "q", "limit": value})

    def test_absent_and_null_leave_the_default_to_the_route(self):
        assert validate_request(RecallRequest, {"query": "q"}).limit is None
        assert validate_request(RecallRequest, {"query": "q", "limit": None}).limit is None
        assert validate_request(RecallRequest, {"query": "q", "limit": 10**30}).limit == 10**30  # the route clamps


class TestVector:
    def test_missing_is_422(self):
        with pytest.raises(FieldError, match="missing field `vector`"):
            validate_request(ManualRecallRequest, {})

    @pytest.mark.parametrize("length", [0, 1535, 1537])
    def test_wrong_length_is_400(self, length):
        with pytest.raises(InvalidValue, match=f"1536 dimensions, got {length}"):
            validate_request(ManualRecallRequest, {"vector": [0.5] * length})

    @pytest.mark.parametrize("bad", ["1", True, None, [1.0]])
    def test_a_component_of_the_wrong_type_is_422(self, bad):
        with pytest.raises(FieldError, match=r"`vector\[7\]` must be a number"):
            validate_request(ManualRecallRequest, {"vector": vector_with(7, bad)})

    @pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
    def test_non_finite_is_400(self, bad):
        with pytest.raises(InvalidValue, match="finite numbers"):
            validate_request(ManualRecallRequest, {"vector": vector_with(7, bad)})

    def test_json_overflow_to_infinity_is_400(self):
        # 1e999 parses as float('inf'): it used to reach pgvector and fail as a 500.
        payload = parse_json_object(json.dumps({"vector": VECTOR}).replace("0.01", "1e999", 1).encode(), "application/json")
        with pytest.raises(InvalidValue, match="finite numbers"):
            validate_request(ManualRecallRequest, payload)

    @pytest.mark.parametrize("vector", [[0.0] * EMBEDDING_DIMENSIONS, [0] * EMBEDDING_DIMENSIONS, [1e-30] * EMBEDDING_DIMENSIONS])
    def test_degenerate_zero_norm_is_400(self, vector):
        with pytest.raises(InvalidValue, match="non-zero norm"):
            validate_request(ManualRecallRequest, {"vector": vector})

    def test_components_whose_squares_overflow_float32_are_400(self):
        with pytest.raises(InvalidValue, match="within"):
            validate_request(ManualRecallRequest, {"vector": [3e38] * EMBEDDING_DIMENSIONS})

    def test_ints_become_floats(self):
        assert validate_request(ManualRecallRequest, {"vector": [1] * EMBEDDING_DIMENSIONS}).vector[0] == 1.0


class TestEncryptedData:
    @pytest.mark.parametrize("value,match", [("not base64!", "not valid base64"), ("", "is empty"), ("QQ", "not valid base64")])
    def test_rejects(self, value, match):
        with pytest.raises(InvalidValue, match=match):
            validate_request(ManualRememberRequest, {"encrypted_data": value, "vector": VECTOR})

    def test_wrong_type_is_422(self):
        with pytest.raises(FieldError, match="`encrypted_data` must be a string"):
            validate_request(ManualRememberRequest, {"encrypted_data": 5, "vector": VECTOR})

    def test_decoded(self):
        body = validate_request(ManualRememberRequest, {"encrypted_data": base64.b64encode(b"\x00\x01").decode(), "vector": VECTOR})
        assert body.encrypted_data == b"\x00\x01"


class TestOtherFields:
    def test_bulk_bounds(self):
        with pytest.raises(InvalidValue, match="1..20 entries, got 0"):
            validate_request(RememberBulkRequest, {"items": []})
        with pytest.raises(InvalidValue, match="1..20 items, got 21"):
            validate_request(BulkStatusRequest, {"job_ids": ["a"] * 21})
        with pytest.raises(FieldError, match=r"`job_ids\[0\]` must be a string"):
            validate_request(BulkStatusRequest, {"job_ids": [1]})
        with pytest.raises(FieldError, match=r"`items\[1\]` must be an object"):
            validate_request(RememberBulkRequest, {"items": [{"text": "a"}, "b"]})
        assert validate_request(BulkStatusRequest, {"job_ids": ["a", "a"]}).job_ids == ["a", "a"]

    @pytest.mark.parametrize("value,ok", [("abc-DEF_123", True), ("", False), ("a/b", False), ("x" * 129, False), ("ü", False)])
    def test_job_id(self, value, ok):
        assert is_job_id(value) is ok

    def test_idempotency_key(self):
        with pytest.raises(InvalidValue, match="printable ASCII"):
            validate_request(RememberRequest, {"text": "t", "idempotency_key": "has space"})
        assert validate_request(RememberRequest, {"text": "t", "idempotency_key": "k-1"}).idempotency_key == "k-1"

    def test_occurred_at(self):
        with pytest.raises(InvalidValue, match="UTC offset"):
            validate_request(AnalyzeRequest, {"text": "t", "occurred_at": "2024-01-01T00:00:00"})
        with pytest.raises(InvalidValue, match="RFC 3339"):
            validate_request(AnalyzeRequest, {"text": "t", "occurred_at": "yesterday"})
        assert validate_request(AnalyzeRequest, {"text": "t", "occurred_at": "2024-01-01T00:00:00Z"}).occurred_at


class TestQueryInteger:
    @pytest.mark.parametrize("raw", ["²", "١٢", "¹⁰", "1e3", "-1", "0", " 5", "5 ", "", "9" * 10, "9" * 5000])
    def test_anything_but_a_few_ascii_digits_is_400(self, raw):
        # "²".isdigit() is True but int("²") raises, and 5000 digits pass Python's int-string limit: both were 500s.
        with pytest.raises(InvalidValue, match="ASCII digits"):
            query_integer(raw, "limit")

    def test_parsed(self):
        assert query_integer("42", "limit") == 42 and query_integer(None, "limit") is None
