"""SigV4 against AWS's published test-suite vectors (aws-sig-v4-test-suite: credentials AKIDEXAMPLE, region
us-east-1, service "service", 2015-08-30T12:36:00Z), then the server-side check the KMS stand-in uses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from memwal_common.sigv4 import AwsCredentials, SignatureMismatch, sign, verify

SUITE = AwsCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
SUITE_TIME = datetime(2015, 8, 30, 12, 36, tzinfo=UTC)
STS_TOKEN = (
    "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/"
    "qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+"
    "scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="
)


@pytest.mark.parametrize(
    ("name", "method", "url", "headers", "token", "signed_headers", "signature"),
    [
        ("get-vanilla", "GET", "https://example.amazonaws.com/", {}, None, "host;x-amz-date",
         "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
        ("post-vanilla", "POST", "https://example.amazonaws.com/", {}, None, "host;x-amz-date",
         "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
        ("get-vanilla-query-order-key-case", "GET", "https://example.amazonaws.com/?Param2=value2&Param1=value1", {}, None,
         "host;x-amz-date", "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
        ("post-header-value-case", "POST", "https://example.amazonaws.com/", {"My-Header1": "VALUE1"}, None,
         "host;my-header1;x-amz-date", "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d"),
        ("post-sts-header-before", "POST", "https://example.amazonaws.com/", {}, STS_TOKEN,
         "host;x-amz-date;x-amz-security-token", "85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"),
    ],
)  # fmt: skip
def test_published_vectors(name, method, url, headers, token, signed_headers, signature):
    credentials = AwsCredentials(SUITE.access_key_id, SUITE.secret_access_key, token)
    added = sign(method=method, url=url, headers=headers, body=b"", credentials=credentials, region="us-east-1",
                 service="service", now=SUITE_TIME)  # fmt: skip
    assert added["x-amz-date"] == "20150830T123600Z"
    assert added["authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
        f"SignedHeaders={signed_headers}, Signature={signature}"
    )
    assert added.get("x-amz-security-token") == token


def signed_request(body=b'{"CiphertextBlob":"AA=="}', now=SUITE_TIME, credentials=SUITE):
    headers = {"content-type": "application/x-amz-json-1.1", "x-amz-target": "TrentService.Decrypt"}
    added = sign(method="POST", url="http://127.0.0.1:9000/", headers=headers, body=body, credentials=credentials,
                 region="us-east-1", service="kms", now=now)  # fmt: skip
    return {**headers, "host": "127.0.0.1:9000", **added}, body


def check(headers, body, *, now=SUITE_TIME, secrets=None, region="us-east-1"):
    return verify(method="POST", path="/", query="", headers=headers, body=body,
                  secrets=secrets or {SUITE.access_key_id: SUITE.secret_access_key}, region=region, service="kms", now=now)  # fmt: skip


class TestVerify:
    def test_accepts_what_sign_produced(self):
        headers, body = signed_request()
        assert check(headers, body).access_key_id == "AKIDEXAMPLE"

    def test_a_changed_body_header_or_secret_is_refused(self):
        headers, body = signed_request()
        with pytest.raises(SignatureMismatch, match="does not verify"):
            check(headers, body + b" ")
        with pytest.raises(SignatureMismatch, match="does not verify"):
            check({**headers, "x-amz-target": "TrentService.Encrypt"}, body)
        with pytest.raises(SignatureMismatch, match="does not verify"):
            check(headers, body, secrets={"AKIDEXAMPLE": "another secret"})

    def test_unknown_key_wrong_scope_and_stale_requests_are_refused(self):
        headers, body = signed_request()
        with pytest.raises(SignatureMismatch, match="not known"):
            check(headers, body, secrets={"AKIDOTHER": "x"})
        with pytest.raises(SignatureMismatch, match="scope"):
            check(headers, body, region="eu-west-1")
        with pytest.raises(SignatureMismatch, match="time window"):
            check(headers, body, now=SUITE_TIME + timedelta(minutes=6))

    @pytest.mark.parametrize("authorization", ["", "Bearer x", "AWS4-HMAC-SHA256 " + "x" * 3000])
    def test_malformed_authorization_is_refused(self, authorization):
        headers, body = signed_request()
        with pytest.raises(SignatureMismatch):
            check({**headers, "authorization": authorization}, body)

    def test_repr_hides_the_secret(self):
        assert "wJalr" not in repr(SUITE) and "AKIDEXAMPLE" in repr(SUITE)
