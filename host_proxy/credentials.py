"""AWS credentials for the enclave's KMS calls: where the parent gets them, and the frame it hands over.

The enclave has no network and no instance metadata service; its KMS requests must still be signed by an
identity KMS knows. The parent has one — the instance role — and hands its temporary credentials over the
credentials channel (``manifest.CREDENTIALS_PORT``): one frame per connection, then close::

    "MWC1"   4 bytes   magic and version
    length   u32       big-endian, 1..MAX_FRAME_BYTES
    JSON               {"AccessKeyId", "SecretAccessKey", "Token", "Expiration"} (IMDS's own field names)

These credentials are the host's, not a secret kept from it: what protects the enclave's secrets is the KMS
key policy (it answers only to a Recipient document with the published PCRs) and the enclave's own RSA key.

Sources (``[host] aws_credentials`` in the manifest):

* ``imds``      the EC2 instance metadata service, IMDSv2 (token, then the role's credentials), cached until
                five minutes before they expire;
* ``file:PATH`` a JSON file with the same fields (development, tests, or credentials written by another agent).
"""

from __future__ import annotations

import asyncio
import json
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import httpx

from .errors import ConfigurationError

MAGIC = b"MWC1"
HEADER = struct.Struct(">4sI")
MAX_FRAME_BYTES = 8 * 1024
IMDS_URL = "http://169.254.169.254"
IMDS_TOKEN_TTL_SECONDS = 21_600
IMDS_TIMEOUT = httpx.Timeout(2.0)
REFRESH_BEFORE_EXPIRY = timedelta(minutes=5)
FIELDS = ("AccessKeyId", "SecretAccessKey", "Token", "Expiration")


class CredentialsUnavailable(Exception):
    """The parent has no credentials to hand over right now (IMDS unreachable, file missing or malformed)."""


@dataclass(frozen=True, repr=False)
class FramedCredentials:
    """IMDS's fields, as strings; ``repr`` shows the key id only."""

    access_key_id: str
    secret_access_key: str
    token: str
    expiration: str

    def __repr__(self) -> str:
        return f"FramedCredentials(access_key_id={self.access_key_id!r}, expiration={self.expiration!r})"

    @classmethod
    def from_json(cls, data: Any) -> FramedCredentials:
        if not isinstance(data, dict) or not all(isinstance(data.get(name, ""), str) for name in FIELDS):
            raise CredentialsUnavailable("credentials must be a JSON object of strings")
        if not data.get("AccessKeyId") or not data.get("SecretAccessKey"):
            raise CredentialsUnavailable("credentials need AccessKeyId and SecretAccessKey")
        return cls(data["AccessKeyId"], data["SecretAccessKey"], data.get("Token", ""), data.get("Expiration", ""))

    def as_json(self) -> dict[str, str]:
        return dict(zip(FIELDS, (self.access_key_id, self.secret_access_key, self.token, self.expiration), strict=True))

    def expires_at(self) -> datetime | None:
        try:
            return datetime.fromisoformat(self.expiration.replace("Z", "+00:00")) if self.expiration else None
        except ValueError:
            return None


def encode_frame(credentials: FramedCredentials) -> bytes:
    body = json.dumps(credentials.as_json(), separators=(",", ":")).encode("utf-8")
    if len(body) > MAX_FRAME_BYTES:
        raise CredentialsUnavailable("credentials larger than a frame")
    return HEADER.pack(MAGIC, len(body)) + body


def decode_frame(frame: bytes) -> FramedCredentials:
    if len(frame) < HEADER.size:
        raise CredentialsUnavailable("the credentials frame is truncated")
    magic, length = HEADER.unpack_from(frame)
    if magic != MAGIC or not 0 < length <= MAX_FRAME_BYTES or len(frame) != HEADER.size + length:
        raise CredentialsUnavailable("not a credentials frame")
    try:
        return FramedCredentials.from_json(json.loads(frame[HEADER.size :]))
    except ValueError:
        raise CredentialsUnavailable("the credentials frame is not JSON") from None


class CredentialsSource(Protocol):
    async def current(self) -> FramedCredentials:
        """Credentials valid now, or CredentialsUnavailable."""


class FileCredentials:
    def __init__(self, path: Path) -> None:
        self.path = path

    async def current(self) -> FramedCredentials:
        try:
            raw = await asyncio.to_thread(self.path.read_bytes)
        except OSError as error:
            raise CredentialsUnavailable(f"cannot read {self.path}: {error.strerror or error}") from None
        if len(raw) > MAX_FRAME_BYTES:
            raise CredentialsUnavailable(f"{self.path} is larger than {MAX_FRAME_BYTES} bytes")
        try:
            return FramedCredentials.from_json(json.loads(raw))
        except ValueError:
            raise CredentialsUnavailable(f"{self.path} is not JSON") from None


class ImdsCredentials:
    """The instance role's credentials from IMDSv2, cached until shortly before they expire."""

    def __init__(self, *, base_url: str = IMDS_URL, clock: Any = None, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._base_url = base_url
        self._clock = clock or (lambda: datetime.now(UTC))
        self._transport = transport
        self._cached: FramedCredentials | None = None

    async def current(self) -> FramedCredentials:
        cached = self._cached
        expires = cached.expires_at() if cached is not None else None
        if cached is not None and expires is not None and self._clock() < expires - REFRESH_BEFORE_EXPIRY:
            return cached
        try:
            async with httpx.AsyncClient(base_url=self._base_url, timeout=IMDS_TIMEOUT, transport=self._transport) as http:
                token = await http.put("/latest/api/token", headers={"x-aws-ec2-metadata-token-ttl-seconds": str(IMDS_TOKEN_TTL_SECONDS)})
                token.raise_for_status()
                headers = {"x-aws-ec2-metadata-token": token.text}
                roles = await http.get("/latest/meta-data/iam/security-credentials/", headers=headers)
                roles.raise_for_status()
                role = roles.text.strip().splitlines()[0] if roles.text.strip() else ""
                if not role or "/" in role:
                    raise CredentialsUnavailable("the instance has no IAM role")
                answer = await http.get(f"/latest/meta-data/iam/security-credentials/{role}", headers=headers)
                answer.raise_for_status()
                data = answer.json()
        except (httpx.HTTPError, ValueError, IndexError) as error:
            raise CredentialsUnavailable(f"IMDS: {type(error).__name__}: {error}") from None
        if isinstance(data, dict) and data.get("Code", "Success") != "Success":
            raise CredentialsUnavailable(f"IMDS answered Code={data.get('Code')}")
        self._cached = FramedCredentials.from_json(data)
        return self._cached


def credentials_source(text: str) -> CredentialsSource:
    """``imds`` or ``file:/absolute/path`` ([host] aws_credentials)."""
    if text == "imds":
        return ImdsCredentials()
    if text.startswith("file:/"):
        return FileCredentials(Path(text[len("file:") :]))
    raise ConfigurationError(f"aws_credentials {text!r}: expected imds or file:/absolute/path")
