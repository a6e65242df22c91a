"""Seal session keys: the exported ``x-seal-session`` a client hands us, and the certificate and
request signatures a key server checks (Seal ``signed_message.rs``, TS ``session-key.ts``).

A user signs once, as a Sui personal message,
``Accessing keys of package {PKG} for {TTL} mins from {YYYY-MM-DD HH:MM:SS} UTC, session key {b64 pk}``;
the session's Ed25519 key then signs each request: BCS ``{ptb, enc_key, enc_verification_key}``.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import nacl.exceptions
import nacl.signing

from chain import bcs
from chain.address import is_address, normalize_address, sui_address
from chain.errors import InvalidSignature
from chain.keys import decode_sui_private_key, encode_sui_private_key
from chain.personal_message import sign_personal_message, verify_personal_message
from sealcrypto.errors import SessionError, SessionExpired

MAX_SESSION_HEADER_BYTES = 8 * 1024
MAX_TTL_MIN = 30
# The TS SDK treats a session as expired 10 s early, so a request never reaches a server stale.
EXPIRY_MARGIN_MS = 10_000
MAX_MVR_NAME_LENGTH = 256


def session_message(package_name: str, ttl_min: int, creation_time_ms: int, session_public_key: bytes) -> bytes:
    """The exact personal message text a user signs to certify a session key."""
    moment = datetime.fromtimestamp(creation_time_ms // 1000, tz=UTC)
    return (
        f"Accessing keys of package {package_name} for {ttl_min} mins from "
        f"{moment.strftime('%Y-%m-%d %H:%M:%S')} UTC, session key "
        f"{base64.b64encode(session_public_key).decode('ascii')}"
    ).encode()


def request_bytes(ptb: bytes, enc_key: bytes, enc_verification_key: bytes) -> bytes:
    """BCS ``RequestFormat {ptb, enc_key, enc_verification_key}`` (all ``vector<u8>``)."""
    return bcs.byte_vector(ptb) + bcs.byte_vector(enc_key) + bcs.byte_vector(enc_verification_key)


def verify_request_signature(session_vk: bytes, message: bytes, signature: bytes) -> bool:
    try:
        nacl.signing.VerifyKey(session_vk).verify(message, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, TypeError):
        return False
    return True


@dataclass(frozen=True)
class Certificate:
    """What ``/v1/fetch_key`` receives as ``certificate``."""

    user: str
    session_vk: bytes
    creation_time: int
    ttl_min: int
    signature: str
    mvr_name: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "user": self.user,
            "session_vk": base64.b64encode(self.session_vk).decode("ascii"),
            "creation_time": self.creation_time,
            "ttl_min": self.ttl_min,
            "signature": self.signature,
            "mvr_name": self.mvr_name,
        }

    def message(self, package_id: str) -> bytes:
        return session_message(self.mvr_name or package_id, self.ttl_min, self.creation_time, self.session_vk)


@dataclass(frozen=True, repr=False)
class SessionKey:
    """A verified, unexpired session imported from the SDK's exported form."""

    address: str
    package_id: str
    mvr_name: str | None
    creation_time_ms: int
    ttl_min: int
    personal_message_signature: str
    _seed: bytes = field(repr=False)

    @classmethod
    def from_header(cls, value: str | bytes, *, clock: Callable[[], float] = time.time) -> SessionKey:
        """Decode the ``x-seal-session`` header: base64 of the exported JSON."""
        if len(value) > MAX_SESSION_HEADER_BYTES:
            raise SessionError("session header too large")
        try:
            decoded = json.loads(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError, TypeError):
            raise SessionError("session header is not base64 JSON") from None
        return cls.from_exported(decoded, clock=clock)

    @classmethod
    def from_exported(cls, exported: Mapping[str, object], *, clock: Callable[[], float] = time.time) -> SessionKey:
        """Check the exported session (signature over the exact message, address, TTL) and import it."""
        if not isinstance(exported, Mapping):
            raise SessionError("session must be a JSON object")
        address = _address_field(exported, "address")
        package_id = _address_field(exported, "packageId")
        mvr_name = exported.get("mvrName")
        if mvr_name is not None and (not isinstance(mvr_name, str) or len(mvr_name) > MAX_MVR_NAME_LENGTH):
            raise SessionError("mvrName must be a short string")
        creation_time_ms = _integer_field(exported, "creationTimeMs")
        ttl_min = _integer_field(exported, "ttlMin")
        if not 1 <= ttl_min <= MAX_TTL_MIN:
            raise SessionError("ttlMin must be between 1 and 30")
        signature = exported.get("personalMessageSignature")
        private_key = exported.get("sessionKey")
        if not isinstance(signature, str) or not isinstance(private_key, str):
            raise SessionError("session lacks its signature or key")
        try:
            seed = decode_sui_private_key(private_key)
        except ValueError:
            raise SessionError("sessionKey is not an Ed25519 Sui private key") from None
        session = cls(address, package_id, mvr_name, creation_time_ms, ttl_min, signature, seed)
        session._verify_signature()
        session.check_fresh(clock)
        return session

    @classmethod
    def create(
        cls,
        *,
        user_seed: bytes,
        package_id: str,
        ttl_min: int,
        now_ms: int,
        session_seed: bytes,
        mvr_name: str | None = None,
    ) -> SessionKey:
        """Create and certify a session with the user's Ed25519 key (tests, localnet CLI)."""
        user = nacl.signing.SigningKey(user_seed)
        session_pk = bytes(nacl.signing.SigningKey(session_seed).verify_key)
        package = normalize_address(package_id)
        message = session_message(mvr_name or package, ttl_min, now_ms, session_pk)
        signature = sign_personal_message(user_seed, message)
        return cls(sui_address(bytes(user.verify_key)), package, mvr_name, now_ms, ttl_min, signature, session_seed)

    @property
    def session_public_key(self) -> bytes:
        return bytes(nacl.signing.SigningKey(self._seed).verify_key)

    def personal_message(self) -> bytes:
        return session_message(self.mvr_name or self.package_id, self.ttl_min, self.creation_time_ms, self.session_public_key)

    @property
    def expires_at_ms(self) -> int:
        """The last moment (ms since the epoch) this session is still used, with the SDK's safety margin."""
        return self.creation_time_ms + self.ttl_min * 60_000 - EXPIRY_MARGIN_MS

    def is_expired(self, now_ms: int) -> bool:
        return self.expires_at_ms < now_ms

    def check_fresh(self, clock: Callable[[], float] = time.time) -> None:
        now_ms = int(clock() * 1000)
        if self.is_expired(now_ms):
            raise SessionExpired("session key has expired")
        if self.creation_time_ms > now_ms + EXPIRY_MARGIN_MS:
            raise SessionExpired("session key was created in the future")

    def certificate(self) -> Certificate:
        return Certificate(
            user=self.address,
            session_vk=self.session_public_key,
            creation_time=self.creation_time_ms,
            ttl_min=self.ttl_min,
            signature=self.personal_message_signature,
            mvr_name=self.mvr_name,
        )

    def sign_request(self, ptb: bytes, enc_key: bytes, enc_verification_key: bytes) -> str:
        """Base64 Ed25519 signature by the session key over the BCS request."""
        signature = nacl.signing.SigningKey(self._seed).sign(request_bytes(ptb, enc_key, enc_verification_key))
        return base64.b64encode(signature.signature).decode("ascii")

    def to_exported(self) -> dict[str, object]:
        """The SDK's exported form (contains the session private key: never log it)."""
        return {
            "address": self.address,
            "packageId": self.package_id,
            "mvrName": self.mvr_name,
            "creationTimeMs": self.creation_time_ms,
            "ttlMin": self.ttl_min,
            "personalMessageSignature": self.personal_message_signature,
            "sessionKey": encode_sui_private_key(self._seed),
        }

    def _verify_signature(self) -> None:
        try:
            signer = verify_personal_message(self.personal_message(), self.personal_message_signature)
        except InvalidSignature:
            raise SessionError("personal-message signature does not verify") from None
        if signer != self.address:
            raise SessionError("personal-message signer is not the session's address")

    def __repr__(self) -> str:
        return f"SessionKey(address={self.address!r}, package_id={self.package_id!r}, ttl_min={self.ttl_min})"


def _address_field(exported: Mapping[str, object], name: str) -> str:
    value = exported.get(name)
    if not isinstance(value, str) or not is_address(value) or len(value) > 66:
        raise SessionError(f"{name} must be a Sui address")
    return normalize_address(value)


def _integer_field(exported: Mapping[str, object], name: str) -> int:
    value = exported.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise SessionError(f"{name} must be a non-negative integer")
    return value
