"""Secrets from AWS KMS without a person: ``Decrypt`` with an attested ``Recipient``.

    (1) key        a fresh RSA-2048 key pair, in memory, for this one exchange
    (2) document   an NSM attestation document whose public_key is that key's SubjectPublicKeyInfo
    (3) Decrypt    POST TrentService.Decrypt (JSON 1.1, SigV4 with credentials the parent hands over on the
                   credentials channel) through the egress allowlist: {CiphertextBlob, Recipient:
                   {AttestationDocument, KeyEncryptionAlgorithm: RSAES_OAEP_SHA_256}}. KMS checks the key
                   policy's kms:RecipientAttestation:* conditions against the document, decrypts, and answers
                   CiphertextForRecipient instead of Plaintext
    (4) open       CiphertextForRecipient is a CMS EnvelopedData (BER): one KeyTransRecipientInfo with
                   RSAES-OAEP-SHA-256 wrapping an AES-256-CBC content key. asn1crypto reads the structure,
                   cryptography does the RSA and AES (open_recipient_envelope)
    (5) secrets    the plaintext is the secrets JSON {NAME: value}, validated against the allowlist

The parent holds the AWS credentials (they are the instance role's), but without the enclave's private key
the answer is useless to it, and the key policy refuses a Decrypt whose Recipient document does not show the
published measurements. The CiphertextBlob itself is public (in the manifest).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import httpx
from asn1crypto import cms
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.padding import MGF1, OAEP
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from attestation.nsm import Attester
from attestation.provisioning import validate_secrets
from manifest import KmsProvisioning
from memwal_common.sigv4 import AwsCredentials, sign

from .errors import RecipientEnvelopeError, SourceUnavailable
from .provisioning import ProvisionedSecrets

logger = logging.getLogger("memwal.enclave.kms")

RSA_KEY_BITS = 2048
KEY_ENCRYPTION_ALGORITHM = "RSAES_OAEP_SHA_256"
JSON_CONTENT_TYPE = "application/x-amz-json-1.1"
MAX_RESPONSE_BYTES = 64 * 1024
MAX_ENVELOPE_BYTES = 32 * 1024
AES_256_KEY_BYTES = 32
AES_BLOCK_BYTES = 16
KMS_TIMEOUT = httpx.Timeout(20.0, connect=5.0)
Clock = Callable[[], datetime]
CredentialsProvider = Callable[[], Awaitable[AwsCredentials]]


class KmsError(SourceUnavailable):
    """KMS answered with an error (``kind`` is its __type, e.g. AccessDeniedException)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"KMS {kind}: {message}")
        self.kind = kind


class KmsClient:
    """The one KMS call the enclave makes, signed with SigV4; ``transport`` reaches KMS (the egress allowlist).

    Each call opens its own connection and closes it: provisioning calls KMS a few times per boot."""

    def __init__(
        self,
        *,
        endpoint: str,
        region: str,
        credentials: CredentialsProvider,
        clock: Clock,
        transport: Callable[[], httpx.AsyncBaseTransport] = httpx.AsyncHTTPTransport,
        timeout: httpx.Timeout = KMS_TIMEOUT,
    ) -> None:
        self._transport = transport
        self._timeout = timeout
        self._endpoint = endpoint.rstrip("/") + "/"
        self._region = region
        self._credentials = credentials
        self._clock = clock

    async def call(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST one TrentService operation; the parsed JSON answer, or KmsError / SourceUnavailable."""
        payload = json.dumps(body, separators=(",", ":")).encode("utf-8")
        headers = {"content-type": JSON_CONTENT_TYPE, "x-amz-target": f"TrentService.{operation}"}
        credentials = await self._credentials()
        headers.update(sign(method="POST", url=self._endpoint, headers=headers, body=payload, credentials=credentials,
                            region=self._region, service="kms", now=self._clock()))  # fmt: skip
        try:
            async with (
                httpx.AsyncClient(transport=self._transport(), timeout=self._timeout) as http,
                http.stream("POST", self._endpoint, content=payload, headers=headers) as response,
            ):
                raw = bytearray()
                async for chunk in response.aiter_bytes():
                    raw += chunk
                    if len(raw) > MAX_RESPONSE_BYTES:
                        raise SourceUnavailable(f"KMS answer larger than {MAX_RESPONSE_BYTES} bytes")
                status = response.status_code
        except httpx.HTTPError as error:
            raise SourceUnavailable(f"KMS unreachable: {type(error).__name__}: {error}") from None
        try:
            answer = json.loads(bytes(raw))
        except ValueError:
            raise SourceUnavailable(f"KMS answered {status} with a body that is not JSON") from None
        if not isinstance(answer, dict):
            raise SourceUnavailable(f"KMS answered {status} with JSON that is not an object")
        if status != 200:
            kind = str(answer.get("__type", "error")).rsplit("#", 1)[-1]
            raise KmsError(kind, str(answer.get("message") or answer.get("Message") or status))
        return answer

    async def decrypt_for_recipient(self, ciphertext_blob: bytes, attestation_document: bytes, *, key_id: str = "") -> bytes:
        """Decrypt with Recipient; return the raw CiphertextForRecipient (CMS EnvelopedData)."""
        body: dict[str, Any] = {
            "CiphertextBlob": base64.b64encode(ciphertext_blob).decode("ascii"),
            "Recipient": {
                "KeyEncryptionAlgorithm": KEY_ENCRYPTION_ALGORITHM,
                "AttestationDocument": base64.b64encode(attestation_document).decode("ascii"),
            },
        }
        if key_id:
            body["KeyId"] = key_id
        answer = await self.call("Decrypt", body)
        if "Plaintext" in answer:
            raise SourceUnavailable("KMS answered Plaintext instead of CiphertextForRecipient: refused")
        encoded = answer.get("CiphertextForRecipient")
        try:
            envelope = base64.b64decode(encoded, validate=True) if isinstance(encoded, str) else b""
        except (binascii.Error, ValueError):
            envelope = b""
        if not envelope:
            raise SourceUnavailable("KMS answered without a CiphertextForRecipient")
        return envelope


def open_recipient_envelope(data: bytes, private_key: rsa.RSAPrivateKey) -> bytes:
    """Open KMS's CMS EnvelopedData (RSAES-OAEP-SHA-256 + AES-256-CBC); RecipientEnvelopeError otherwise."""
    if not isinstance(data, bytes) or not 0 < len(data) <= MAX_ENVELOPE_BYTES:
        raise RecipientEnvelopeError("the recipient envelope is empty or too large")
    try:
        info = cms.ContentInfo.load(data, strict=True)
        if info["content_type"].native != "enveloped_data":
            raise RecipientEnvelopeError("not a CMS EnvelopedData")
        enveloped = info["content"]
        recipients = enveloped["recipient_infos"]
        if len(recipients) != 1 or recipients[0].name != "ktri":
            raise RecipientEnvelopeError("expected exactly one key-transport recipient")
        recipient = recipients[0].chosen
        algorithm = recipient["key_encryption_algorithm"]
        parameters = algorithm["parameters"]
        if (
            algorithm["algorithm"].native != "rsaes_oaep"
            or parameters["hash_algorithm"]["algorithm"].native != "sha256"
            or parameters["mask_gen_algorithm"]["parameters"]["algorithm"].native != "sha256"
        ):
            raise RecipientEnvelopeError("the content key is not wrapped with RSAES-OAEP-SHA-256")
        content = enveloped["encrypted_content_info"]
        cipher = content["content_encryption_algorithm"]
        if content["content_type"].native != "data" or cipher["algorithm"].native != "aes256_cbc":
            raise RecipientEnvelopeError("the content is not AES-256-CBC encrypted data")
        iv = cipher["parameters"].native
        encrypted_key = recipient["encrypted_key"].native
        ciphertext = content["encrypted_content"].native
    except RecipientEnvelopeError:
        raise
    except (ValueError, TypeError, KeyError):
        raise RecipientEnvelopeError("the recipient envelope is not well-formed CMS") from None
    if not isinstance(iv, bytes) or len(iv) != AES_BLOCK_BYTES or not isinstance(ciphertext, bytes):
        raise RecipientEnvelopeError("malformed AES-256-CBC parameters or content")
    if not ciphertext or len(ciphertext) % AES_BLOCK_BYTES:
        raise RecipientEnvelopeError("the encrypted content is not whole AES blocks")
    try:
        content_key = private_key.decrypt(encrypted_key, OAEP(mgf=MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None))
        if len(content_key) != AES_256_KEY_BYTES:
            raise ValueError
        decryptor = Cipher(algorithms.AES(content_key), modes.CBC(iv)).decryptor()
        padded = decryptor.update(ciphertext) + decryptor.finalize()
        unpadder = padding.PKCS7(AES_BLOCK_BYTES * 8).unpadder()
        return unpadder.update(padded) + unpadder.finalize()
    except ValueError:
        raise RecipientEnvelopeError("the recipient envelope does not open with this enclave's key") from None


class KmsRecipientSource:
    """A :class:`~enclave.provisioning.SecretSource` that asks KMS (see the module docstring)."""

    name = "kms"

    def __init__(self, settings: KmsProvisioning, *, attester: Attester, client: KmsClient) -> None:
        self._settings = settings
        self._attester = attester
        self._client = client

    async def obtain(self) -> ProvisionedSecrets:
        # (1) a key for this exchange only; KMS encrypts the content key to it.
        key = await asyncio.to_thread(rsa.generate_private_key, public_exponent=65537, key_size=RSA_KEY_BITS)
        spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        # (2) the document KMS checks the key policy against.
        document = await asyncio.to_thread(self._attester.attestation, user_data=None, nonce=None, public_key=spki)
        # (3) Decrypt with Recipient.
        envelope = await self._client.decrypt_for_recipient(self._settings.ciphertext, document, key_id=self._settings.key_id)
        # (4) + (5)
        plaintext = open_recipient_envelope(envelope, key)
        try:
            values = json.loads(plaintext.decode("utf-8"))
            if not isinstance(values, dict):
                raise ValueError
            secrets = validate_secrets(values)
        except (ValueError, UnicodeDecodeError):
            raise SourceUnavailable("the KMS plaintext is not a JSON object of allowed secrets") from None
        logger.info("secrets from KMS (%s): %s", self._settings.region, ", ".join(sorted(secrets)))
        return ProvisionedSecrets(values=secrets, source="aws-kms-recipient")
