"""Secrets reach the enclave without passing the host in plaintext: the ``SecretSource`` seam.

* :class:`SealedEnvelopeSource` (implemented): ``POST /provision`` takes a ``MWP1`` envelope
  (attestation/provisioning.py) sealed to this boot's X25519 key. The envelope names the SHA-256 of
  the attestation document the operator verified; it must be one this boot issued within
  ``DOCUMENT_TTL`` (so the operator saw a fresh document of *this* enclave). One-shot: after a
  successful opening every further request gets 409. Bad envelopes do not consume the shot.
* :class:`KmsRecipientSource` (interface + flow; CMS parsing not included): AWS KMS ``Decrypt`` with
  ``Recipient={AttestationDocument, KeyEncryptionAlgorithm: RSAES_OAEP_SHA_256}``; KMS checks the key
  policy conditions (``kms:RecipientAttestation:ImageSha384`` / ``…:PCR0``…) against the document and
  returns ``CiphertextForRecipient``, a CMS EnvelopedData for the RSA key whose SPKI is the document's
  ``public_key``. See docs/tee.md.

Responses of ``POST /provision`` (generic on purpose; the log has the detail)::

    202 {"status":"accepted"}                          secrets opened; the relayer is starting (poll /health)
    400 {"error":"invalid provisioning envelope"}      malformed, wrong key, tampered, disallowed names
    403 {"error":"unknown attestation document"}       not a document this boot issued recently
    409 {"error":"already provisioned"}
    413 {"error":"envelope too large"}
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from attestation.nsm import Attester
from attestation.provisioning import MAX_ENVELOPE_SIZE, EnvelopeError, open_envelope

from .errors import AlreadyProvisioned, UnknownAttestation

logger = logging.getLogger("memwal.enclave.provisioning")

DOCUMENT_TTL = timedelta(minutes=10)
MAX_REMEMBERED_DOCUMENTS = 1024


@dataclass(frozen=True, repr=False)
class ProvisionedSecrets:
    """Secret environment variables for the relayer and sidecar; ``repr`` shows names only."""

    values: Mapping[str, str]
    source: str

    def __repr__(self) -> str:
        return f"ProvisionedSecrets(source={self.source!r}, names={sorted(self.values)})"


class SecretSource(Protocol):
    """Where the runtime gets its secrets; ``obtain()`` is awaited once per boot."""

    async def obtain(self) -> ProvisionedSecrets:
        """Wait until the secrets are available and return them."""


class IssuedDocuments:
    """SHA-256 of the attestation documents this boot handed out, for ``DOCUMENT_TTL``, bounded."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, ttl: timedelta = DOCUMENT_TTL) -> None:
        self._clock = clock
        self._ttl = ttl.total_seconds()
        self._issued: OrderedDict[bytes, float] = OrderedDict()

    def record(self, document: bytes) -> None:
        self._issued[hashlib.sha256(document).digest()] = self._clock()
        while len(self._issued) > MAX_REMEMBERED_DOCUMENTS:
            self._issued.popitem(last=False)

    def __contains__(self, digest: bytes) -> bool:
        issued = self._issued.get(digest)
        return issued is not None and self._clock() - issued <= self._ttl


class SealedEnvelopeSource:
    """Secrets from one ``POST /provision`` envelope sealed to the provisioning key."""

    def __init__(self, provisioning_key: X25519PrivateKey, issued: IssuedDocuments) -> None:
        self._key = provisioning_key
        self._issued = issued
        self._opened: asyncio.Future[ProvisionedSecrets] | None = None
        self._lock = asyncio.Lock()

    @property
    def provisioned(self) -> bool:
        return self._opened is not None and self._opened.done()

    def _future(self) -> asyncio.Future[ProvisionedSecrets]:
        if self._opened is None:
            self._opened = asyncio.get_running_loop().create_future()
        return self._opened

    async def obtain(self) -> ProvisionedSecrets:
        return await asyncio.shield(self._future())

    def accept(self, envelope: bytes) -> ProvisionedSecrets:
        """Open an envelope; raise AlreadyProvisioned, UnknownAttestation or EnvelopeError."""
        future = self._future()
        if future.done():
            raise AlreadyProvisioned("secrets were already provisioned during this boot")
        opened = open_envelope(envelope, recipient_private_key=self._key)
        if opened.document_sha256 not in self._issued:
            raise UnknownAttestation("the envelope is bound to a document this boot did not issue recently")
        secrets = ProvisionedSecrets(values=dict(opened.secrets), source="sealed-envelope")
        future.set_result(secrets)
        return secrets

    def endpoint(self) -> Callable[[Request], Awaitable[Response]]:
        """The Starlette endpoint for ``POST /provision``."""

        async def provision(request: Request) -> Response:
            async with self._lock:
                if self.provisioned:
                    return JSONResponse({"error": "already provisioned"}, status_code=409)
                body = bytearray()
                async for chunk in request.stream():
                    body += chunk
                    if len(body) > MAX_ENVELOPE_SIZE:
                        return JSONResponse({"error": "envelope too large"}, status_code=413)
                try:
                    secrets = self.accept(bytes(body))
                except EnvelopeError:
                    logger.warning("refused a provisioning envelope that does not open")
                    return JSONResponse({"error": "invalid provisioning envelope"}, status_code=400)
                except UnknownAttestation as error:
                    logger.warning("refused a provisioning envelope: %s", error)
                    return JSONResponse({"error": "unknown attestation document"}, status_code=403)
                except AlreadyProvisioned:
                    return JSONResponse({"error": "already provisioned"}, status_code=409)
            logger.info("provisioned secrets %s", ", ".join(sorted(secrets.values)))
            return JSONResponse({"status": "accepted"}, status_code=202)

        return provision


class KmsRecipientSource:
    """Secrets from AWS KMS ``Decrypt`` with an attested ``Recipient`` (flow only; see docs/tee.md).

    ``decrypt(ciphertext_blob, attestation_document) -> ciphertext_for_recipient`` performs the signed
    KMS call (SigV4 over the egress tunnel to ``kms.<region>.amazonaws.com:443``);
    ``open_cms(ciphertext_for_recipient, rsa_private_key) -> bytes`` unwraps the CMS EnvelopedData
    (RSAES-OAEP-SHA-256 key transport, AES-256-CBC content). Neither ships here: without them
    ``obtain`` raises NotImplementedError instead of silently doing something weaker.
    """

    def __init__(
        self,
        *,
        attester: Attester,
        ciphertext_blob: bytes,
        decrypt: Callable[[bytes, bytes], Awaitable[bytes]] | None = None,
        open_cms: Callable[[bytes, object], bytes] | None = None,
    ) -> None:
        self._attester = attester
        self._ciphertext_blob = ciphertext_blob
        self._decrypt = decrypt
        self._open_cms = open_cms

    async def obtain(self) -> ProvisionedSecrets:
        if self._decrypt is None or self._open_cms is None:
            raise NotImplementedError("the KMS recipient path needs a KMS client and a CMS opener (docs/tee.md)")
        import json

        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        from attestation.provisioning import validate_secrets

        # (1) an in-memory RSA key only for this exchange; KMS encrypts the data key to it.
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        # (2) a document whose public_key is that RSA key; KMS checks it against the key policy.
        document = await asyncio.to_thread(self._attester.attestation, user_data=None, nonce=None, public_key=spki)
        # (3) Decrypt with Recipient; the plaintext never appears in the response, only CiphertextForRecipient.
        envelope = await self._decrypt(self._ciphertext_blob, document)
        # (4) unwrap inside: the plaintext is the secrets JSON.
        plaintext = self._open_cms(envelope, key)
        values = json.loads(plaintext.decode("utf-8"))
        return ProvisionedSecrets(values=validate_secrets(values), source="aws-kms-recipient")
