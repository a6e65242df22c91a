"""AWS Signature Version 4 for JSON APIs (the enclave's KMS calls, and the localnet KMS stand-in's check).

Why not botocore: the enclave needs one signed POST to one service; botocore (with its data files, ~80 MB
installed) would be the largest thing in the measured image. This is the published algorithm, tested
against AWS's own test-suite vectors (tests/memwal_common/test_sigv4.py):

    canonical request  METHOD \\n URI-path \\n sorted query \\n name:value\\n per signed header \\n
                       signed;header;names \\n hex(SHA256(payload))
    string to sign     "AWS4-HMAC-SHA256" \\n amz-date \\n date/region/service/aws4_request \\n hex(SHA256(canonical))
    signing key        HMAC chain: "AWS4"+secret → date → region → service → "aws4_request"
    Authorization      AWS4-HMAC-SHA256 Credential=AKID/scope, SignedHeaders=…, Signature=hex(HMAC(key, string))

Time is a parameter; nothing here reads the clock.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, unquote, urlsplit

ALGORITHM = "AWS4-HMAC-SHA256"
TERMINATOR = "aws4_request"
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
MAX_AUTHORIZATION_CHARACTERS = 2048
_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[A-Za-z0-9]{1,128})/(?P<date>\d{8})/(?P<region>[a-z0-9-]{1,32})/"
    r"(?P<service>[a-z0-9-]{1,32})/aws4_request, ?SignedHeaders=(?P<headers>[a-z0-9;-]{1,512}), ?Signature=(?P<signature>[0-9a-f]{64})"
)
_SPACES = re.compile(r" +")


class SignatureMismatch(ValueError):
    """The request's SigV4 signature is malformed, stale, for other credentials, or does not verify."""


@dataclass(frozen=True, repr=False)
class AwsCredentials:
    """Access key, secret and (for temporary credentials) session token; ``repr`` shows the key id only."""

    access_key_id: str
    secret_access_key: str
    session_token: str | None = None
    expiration: datetime | None = None

    def __repr__(self) -> str:
        return f"AwsCredentials(access_key_id={self.access_key_id!r}, session_token={'set' if self.session_token else 'none'})"


def amz_date(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("time must be timezone-aware")
    return moment.astimezone(UTC).strftime(AMZ_DATE_FORMAT)


def _canonical_query(query: str) -> str:
    pairs = []
    for part in query.split("&") if query else []:
        name, _, value = part.partition("=")
        pairs.append((quote(unquote(name), safe="-_.~"), quote(unquote(value), safe="-_.~")))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def _canonical_value(value: str) -> str:
    return _SPACES.sub(" ", value.strip())


def canonical_request(
    method: str, path: str, query: str, headers: Mapping[str, str], signed_headers: tuple[str, ...], payload: bytes
) -> str:
    """``headers`` by lower-case name; ``signed_headers`` sorted, lower case."""
    lines = [
        method.upper(),
        quote(path or "/", safe="/-_.~"),
        _canonical_query(query),
        *(f"{name}:{_canonical_value(headers[name])}" for name in signed_headers),
        "",
        ";".join(signed_headers),
        hashlib.sha256(payload).hexdigest(),
    ]
    return "\n".join(lines)


def signing_key(secret_access_key: str, date: str, region: str, service: str) -> bytes:
    key = ("AWS4" + secret_access_key).encode("utf-8")
    for part in (date, region, service, TERMINATOR):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key


def _signature(secret: str, stamp: str, region: str, service: str, canonical: str) -> str:
    scope = f"{stamp[:8]}/{region}/{service}/{TERMINATOR}"
    to_sign = "\n".join([ALGORITHM, stamp, scope, hashlib.sha256(canonical.encode("utf-8")).hexdigest()])
    return hmac.new(signing_key(secret, stamp[:8], region, service), to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def sign(
    *,
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    credentials: AwsCredentials,
    region: str,
    service: str,
    now: datetime,
) -> dict[str, str]:
    """The headers to add to the request: ``x-amz-date``, ``x-amz-security-token`` (if any), ``authorization``.

    Every header in ``headers`` is signed, plus ``host`` (from the URL unless given) and those added here.
    """
    parts = urlsplit(url)
    stamp = amz_date(now)
    added = {"x-amz-date": stamp}
    if credentials.session_token:
        added["x-amz-security-token"] = credentials.session_token
    signed = {name.lower(): value for name, value in headers.items()}
    signed.setdefault("host", parts.netloc)
    signed.update(added)
    names = tuple(sorted(signed))
    canonical = canonical_request(method, parts.path, parts.query, signed, names, body)
    signature = _signature(credentials.secret_access_key, stamp, region, service, canonical)
    scope = f"{stamp[:8]}/{region}/{service}/{TERMINATOR}"
    added["authorization"] = (
        f"{ALGORITHM} Credential={credentials.access_key_id}/{scope}, SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    return added


@dataclass(frozen=True)
class VerifiedRequest:
    access_key_id: str
    region: str
    service: str
    signed_at: datetime


def verify(
    *,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
    secrets: Mapping[str, str],
    region: str,
    service: str,
    now: datetime,
    max_skew_seconds: float = 300.0,
) -> VerifiedRequest:
    """Check a received request's signature (a server's side: the KMS stand-in). Raise SignatureMismatch.

    ``headers`` by lower-case name; ``secrets`` maps access key ids to secrets.
    """
    authorization = headers.get("authorization", "")
    if len(authorization) > MAX_AUTHORIZATION_CHARACTERS:
        raise SignatureMismatch("Authorization header too long")
    match = _AUTHORIZATION.fullmatch(authorization)
    if match is None:
        raise SignatureMismatch("Authorization is not an AWS4-HMAC-SHA256 header")
    secret = secrets.get(match["key"])
    if secret is None:
        raise SignatureMismatch("the access key id is not known")
    if (match["region"], match["service"]) != (region, service):
        raise SignatureMismatch(f"credential scope is {match['region']}/{match['service']}, expected {region}/{service}")
    names = tuple(match["headers"].split(";"))
    if list(names) != sorted(set(names)) or "host" not in names or "x-amz-date" not in names:
        raise SignatureMismatch("SignedHeaders must be sorted and include host and x-amz-date")
    if any(name not in headers for name in names):
        raise SignatureMismatch("a signed header is missing from the request")
    stamp = headers["x-amz-date"]
    try:
        signed_at = datetime.strptime(stamp, AMZ_DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise SignatureMismatch("x-amz-date is not YYYYMMDDTHHMMSSZ") from None
    if stamp[:8] != match["date"] or abs((now - signed_at).total_seconds()) > max_skew_seconds:
        raise SignatureMismatch("the signature is outside the allowed time window")
    canonical = canonical_request(method, path, query, headers, names, body)
    expected = _signature(secret, stamp, region, service, canonical)
    if not hmac.compare_digest(expected, match["signature"]):
        raise SignatureMismatch("the signature does not verify")
    return VerifiedRequest(access_key_id=match["key"], region=region, service=service, signed_at=signed_at)
