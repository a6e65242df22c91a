"""STAND-IN for AWS KMS: the JSON 1.1 protocol of ``TrentService.Encrypt`` / ``Decrypt``, for tests and ``make run``.

What it does like KMS (docs.aws.amazon.com/kms/latest/APIReference and the Nitro Enclaves KMS guide):

* ``POST /`` with ``X-Amz-Target: TrentService.<Operation>`` and ``Content-Type: application/x-amz-json-1.1``;
  errors are HTTP 400 ``{"__type": "...Exception", "message": ...}``.
* Every request must carry a valid SigV4 signature (service ``kms``, this region) from a known access key
  (memwal_common.sigv4.verify), within 5 minutes of the stand-in's clock.
* ``Decrypt`` with ``Recipient``: the attestation document is verified (chain to the configured root — the
  simulator's test root here —, signature, age ≤ 5 min), its PCRs are checked against the key policy's
  ``kms:RecipientAttestation:ImageSha384`` / ``kms:RecipientAttestation:PCR<n>`` conditions
  (StringEqualsIgnoreCase), and the plaintext is encrypted for real to the document's RSA public key:
  a CMS EnvelopedData (BER/DER), one KeyTransRecipientInfo (v2, subjectKeyIdentifier) with
  RSAES-OAEP-SHA-256, AES-256-CBC content, returned as ``CiphertextForRecipient``.
* A key policy with attestation conditions refuses a ``Decrypt`` without a ``Recipient`` (the condition keys
  are absent from the request, so the conditions fail, as in IAM).

What differs: keys live in memory (``KmsStandIn.create_key``); the CiphertextBlob format is this stand-in's
(``LKMS1`` ‖ key-id length ‖ key id ‖ 12-byte nonce ‖ AES-256-GCM), not KMS's opaque one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from asn1crypto import algos, cms
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import MGF1, OAEP
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from attestation.document import VerifiedDocument
from attestation.errors import AttestationError, PolicyError
from attestation.trust import TrustRoot
from attestation.verifier import Verifier
from memwal_common.sigv4 import SignatureMismatch, verify

MAX_BODY_BYTES = 64 * 1024
MAX_PLAINTEXT_BYTES = 4096  # KMS Encrypt's limit
BLOB_MAGIC = b"LKMS1"
ACCOUNT = "111122223333"
IMAGE_SHA384 = "kms:RecipientAttestation:ImageSha384"
PCR_CONDITION_PREFIX = "kms:RecipientAttestation:PCR"
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class KmsFault(Exception):
    """An error KMS answers with (``kind`` is the __type)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class KeyPolicy:
    """Who may use a key, and on which attested enclaves (conditions: key → accepted values, any case)."""

    access_key_ids: frozenset[str]
    conditions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def check(self, access_key_id: str, document: VerifiedDocument | None) -> None:
        if access_key_id not in self.access_key_ids:
            raise KmsFault("AccessDeniedException", "the key policy does not allow this principal")
        for condition, accepted in self.conditions.items():
            actual = _condition_value(condition, document)
            if actual is None or actual.lower() not in {value.lower() for value in accepted}:
                raise KmsFault("AccessDeniedException", f"the key policy condition {condition} is not met")


def _condition_value(condition: str, document: VerifiedDocument | None) -> str | None:
    if document is None:
        return None  # no Recipient: the attestation condition keys are absent from the request context
    if condition == IMAGE_SHA384:
        index = 0
    elif condition.startswith(PCR_CONDITION_PREFIX) and condition[len(PCR_CONDITION_PREFIX):].isdigit():
        index = int(condition[len(PCR_CONDITION_PREFIX):])
    else:
        return None
    value = document.pcrs.get(index)
    return value.hex() if value is not None else None


@dataclass
class _Key:
    arn: str
    material: bytes
    policy: KeyPolicy


class KmsStandIn:
    """Keys, credentials and the two operations; ``app()`` serves them."""

    def __init__(self, *, region: str, credentials: Mapping[str, str], trust_root: TrustRoot, clock: Clock = utc_now,
                 rng: Callable[[int], bytes] = os.urandom) -> None:  # fmt: skip
        self.region = region
        self._secrets = dict(credentials)
        self._verifier = Verifier(trust_root=trust_root)
        self._clock = clock
        self._rng = rng
        self._keys: dict[str, _Key] = {}
        self.decrypts_for_recipient = 0

    def create_key(self, policy: KeyPolicy, *, material: bytes | None = None) -> str:
        """A new symmetric key; returns its ARN."""
        key_id = str(uuid.UUID(bytes=self._rng(16), version=4))
        arn = f"arn:aws:kms:{self.region}:{ACCOUNT}:key/{key_id}"
        self._keys[arn] = _Key(arn, material or self._rng(32), policy)
        return arn

    def _key(self, key_id: str) -> _Key:
        for arn, key in self._keys.items():
            if key_id in (arn, arn.rsplit("/", 1)[1]):
                return key
        raise KmsFault("NotFoundException", f"key {key_id!r} does not exist")

    def encrypt(self, access_key_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        key = self._key(_string(body, "KeyId"))
        if access_key_id not in key.policy.access_key_ids:
            raise KmsFault("AccessDeniedException", "the key policy does not allow this principal")
        plaintext = _base64(body, "Plaintext")
        if not 0 < len(plaintext) <= MAX_PLAINTEXT_BYTES:
            raise KmsFault("ValidationException", f"Plaintext must be 1..{MAX_PLAINTEXT_BYTES} bytes")
        arn = key.arn.encode("ascii")
        nonce = self._rng(12)
        blob = BLOB_MAGIC + len(arn).to_bytes(1, "big") + arn + nonce + AESGCM(key.material).encrypt(nonce, plaintext, arn)
        return {"CiphertextBlob": base64.b64encode(blob).decode(), "KeyId": key.arn, "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}

    def decrypt(self, access_key_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        blob = _base64(body, "CiphertextBlob")
        key, plaintext = self._open_blob(blob)
        if "KeyId" in body and self._key(_string(body, "KeyId")).arn != key.arn:
            raise KmsFault("IncorrectKeyException", "the ciphertext was not encrypted under this KeyId")
        recipient = body.get("Recipient")
        if recipient is None:
            key.policy.check(access_key_id, document=None)
            return {"KeyId": key.arn, "Plaintext": base64.b64encode(plaintext).decode(), "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}
        if not isinstance(recipient, Mapping) or recipient.get("KeyEncryptionAlgorithm") != "RSAES_OAEP_SHA_256":
            raise KmsFault("ValidationException", "Recipient.KeyEncryptionAlgorithm must be RSAES_OAEP_SHA_256")
        document = self._verified(_base64(recipient, "AttestationDocument"))
        key.policy.check(access_key_id, document)
        if document.public_key is None:
            raise KmsFault("ValidationException", "the attestation document carries no public key")
        envelope = envelope_for_recipient(plaintext, document.public_key, rng=self._rng)
        self.decrypts_for_recipient += 1
        return {"KeyId": key.arn, "CiphertextForRecipient": base64.b64encode(envelope).decode(),
                "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}  # fmt: skip

    def _open_blob(self, blob: bytes) -> tuple[_Key, bytes]:
        if not blob.startswith(BLOB_MAGIC) or len(blob) < len(BLOB_MAGIC) + 2:
            raise KmsFault("InvalidCiphertextException", "the ciphertext is not a CiphertextBlob of this KMS")
        length = blob[len(BLOB_MAGIC)]
        start = len(BLOB_MAGIC) + 1
        arn = blob[start : start + length]
        nonce, sealed = blob[start + length : start + length + 12], blob[start + length + 12 :]
        key = self._keys.get(arn.decode("ascii", errors="replace"))
        if key is None:
            raise KmsFault("InvalidCiphertextException", "the ciphertext names no key of this KMS")
        try:
            return key, AESGCM(key.material).decrypt(nonce, sealed, arn)
        except Exception:  # noqa: BLE001 - any failure to open is InvalidCiphertext, as KMS says
            raise KmsFault("InvalidCiphertextException", "the ciphertext does not decrypt") from None

    def _verified(self, raw: bytes) -> VerifiedDocument:
        try:
            return self._verifier.verify_live(raw, policy=_AnyPcrs(), nonce=None, now=self._clock())
        except PolicyError as error:
            raise KmsFault("AccessDeniedException", f"attestation document refused: {error}") from None
        except AttestationError as error:
            raise KmsFault("ValidationException", f"the attestation document does not verify: {error}") from None

    def app(self) -> Starlette:
        async def handle(request: Request) -> Response:
            try:
                body = await _read_body(request)
                headers = {name.lower(): value for name, value in request.headers.items()}
                try:
                    signed = verify(method="POST", path=request.url.path, query=request.url.query, headers=headers, body=body,
                                    secrets=self._secrets, region=self.region, service="kms", now=self._clock())  # fmt: skip
                except SignatureMismatch as error:
                    raise KmsFault("InvalidSignatureException", str(error)) from None
                if headers.get("content-type") != "application/x-amz-json-1.1":
                    raise KmsFault("ValidationException", "Content-Type must be application/x-amz-json-1.1")
                operation = headers.get("x-amz-target", "")
                parsed = _json_object(body)
                if operation == "TrentService.Decrypt":
                    return _ok(self.decrypt(signed.access_key_id, parsed))
                if operation == "TrentService.Encrypt":
                    return _ok(self.encrypt(signed.access_key_id, parsed))
                raise KmsFault("UnknownOperationException", f"{operation or 'no X-Amz-Target'} is not served here")
            except KmsFault as fault:
                return JSONResponse({"__type": fault.kind, "message": str(fault)}, status_code=400,
                                    media_type="application/x-amz-json-1.1")  # fmt: skip

        return Starlette(routes=[Route("/", handle, methods=["POST"])])


class _AnyPcrs:
    """The stand-in checks PCRs against the key policy itself; the verifier's debug-mode check still runs."""

    def verify(self, document: VerifiedDocument) -> None:
        if not document.pcrs:
            raise PolicyError("the document carries no PCRs")


def envelope_for_recipient(plaintext: bytes, spki_der: bytes, *, rng: Callable[[int], bytes] = os.urandom) -> bytes:
    """CMS EnvelopedData as KMS answers it: RSAES-OAEP-SHA-256 key transport, AES-256-CBC content."""
    public_key = serialization.load_der_public_key(spki_der)
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise KmsFault("ValidationException", "the recipient public key is not an RSA key")
    content_key, iv = rng(32), rng(16)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(content_key), modes.CBC(iv)).encryptor()
    encrypted_content = encryptor.update(padded) + encryptor.finalize()
    encrypted_key = public_key.encrypt(content_key, OAEP(mgf=MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None))
    sha256 = {"algorithm": "sha256"}
    recipient = cms.KeyTransRecipientInfo(
        {
            "version": "v2",
            "rid": cms.RecipientIdentifier(name="subject_key_identifier", value=hashlib.sha1(spki_der).digest()),  # noqa: S324 - an identifier, as X.509 SKIs are
            "key_encryption_algorithm": {
                "algorithm": "rsaes_oaep",
                "parameters": algos.RSAESOAEPParams(
                    {"hash_algorithm": sha256, "mask_gen_algorithm": {"algorithm": "mgf1", "parameters": sha256}}
                ),
            },
            "encrypted_key": encrypted_key,
        }
    )
    enveloped = cms.EnvelopedData(
        {
            "version": "v2",
            "recipient_infos": [cms.RecipientInfo(name="ktri", value=recipient)],
            "encrypted_content_info": {
                "content_type": "data",
                "content_encryption_algorithm": {"algorithm": "aes256_cbc", "parameters": iv},
                "encrypted_content": encrypted_content,
            },
        }
    )
    dumped: bytes = cms.ContentInfo({"content_type": "enveloped_data", "content": enveloped}).dump()
    return dumped


async def _read_body(request: Request) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise KmsFault("ValidationException", f"the request body exceeds {MAX_BODY_BYTES} bytes")
    return bytes(body)


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        raise KmsFault("SerializationException", "the body is not JSON") from None
    if not isinstance(parsed, dict):
        raise KmsFault("SerializationException", "the body is not a JSON object")
    return parsed


def _string(body: Mapping[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise KmsFault("ValidationException", f"{name} is required")
    return value


def _base64(body: Mapping[str, Any], name: str) -> bytes:
    try:
        return base64.b64decode(_string(body, name), validate=True)
    except (binascii.Error, ValueError):
        raise KmsFault("ValidationException", f"{name} is not base64") from None


def _ok(answer: dict[str, Any]) -> Response:
    return Response(json.dumps(answer), media_type="application/x-amz-json-1.1")
