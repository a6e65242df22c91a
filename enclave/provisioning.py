"""Secrets reach the enclave without passing the host in plaintext: the ``SecretSource`` seam.

* :class:`SealedEnvelopeSource` (implemented): ``POST /provision`` takes a ``MWP1`` envelope
  (attestation/provisioning.py) sealed to this boot's X25519 key. The envelope names the SHA-256 of
  the attestation document the operator verified; it must be one this boot issued within
  ``DOCUMENT_TTL`` (so the operator saw a fresh document of *this* enclave). One-shot: after a
  successful opening every further request gets 409. Bad envelopes do not consume the shot.
* ``enclave.kms.KmsRecipientSource``: AWS KMS ``Decrypt`` with an attested ``Recipient``.
* ``enclave.peer_provisioning.PeerSource``: an already provisioned enclave of the same deployment, after
  mutual attestation.
* :class:`SourcesInOrder`: the manifest's ``[provisioning] sources``, tried round after round until one
  delivers (secret_sources.py builds it).

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
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

import httpx
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from attestation.errors import AttestationError
from attestation.provisioning import MAX_ENVELOPE_SIZE, EnvelopeError, open_envelope

from .errors import AlreadyProvisioned, SourceUnavailable, UnknownAttestation

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

    name = "operator"

    def __init__(self, provisioning_key: X25519PrivateKey, issued: IssuedDocuments) -> None:
        self._key = provisioning_key
        self._issued = issued
        self._opened: asyncio.Future[ProvisionedSecrets] | None = None
        self._lock = asyncio.Lock()
        self._provisioned_elsewhere = False

    @property
    def provisioned(self) -> bool:
        return self._provisioned_elsewhere or (self._opened is not None and self._opened.done())

    def provisioned_elsewhere(self) -> None:
        """Another source delivered: from now on ``POST /provision`` answers 409."""
        self._provisioned_elsewhere = True

    def _future(self) -> asyncio.Future[ProvisionedSecrets]:
        if self._opened is None:
            self._opened = asyncio.get_running_loop().create_future()
        return self._opened

    async def obtain(self) -> ProvisionedSecrets:
        return await asyncio.shield(self._future())

    def accept(self, envelope: bytes) -> ProvisionedSecrets:
        """Open an envelope; raise AlreadyProvisioned, UnknownAttestation or EnvelopeError."""
        future = self._future()
        if future.done() or self._provisioned_elsewhere:
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


class AutomaticSource(Protocol):
    """A source that delivers without a person (KMS, a peer); ``SourceUnavailable`` means "not this round"."""

    name: str

    async def obtain(self) -> ProvisionedSecrets:
        """Deliver the secrets now, or raise SourceUnavailable."""


class SourcesInOrder:
    """The manifest's ``[provisioning] sources``: the automatic ones tried in order, round after round (a pause
    of ``retry_seconds`` between rounds), while the operator's ``POST /provision`` is accepted meanwhile if
    listed. The first to deliver wins; an enclave that restarts runs this again and provisions itself."""

    def __init__(
        self,
        automatic: Sequence[AutomaticSource],
        *,
        operator: SealedEnvelopeSource | None,
        retry_seconds: float,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if not automatic and operator is None:
            raise ValueError("at least one secret source is needed")
        self._automatic = tuple(automatic)
        self._operator = operator
        self._retry_seconds = retry_seconds
        self._sleep = sleep
        self.attempts = 0

    async def obtain(self) -> ProvisionedSecrets:
        automatic = asyncio.ensure_future(self._rounds()) if self._automatic else None
        operator = asyncio.ensure_future(self._operator.obtain()) if self._operator is not None else None
        contenders = [task for task in (automatic, operator) if task is not None]
        try:
            done, _ = await asyncio.wait(contenders, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for contender in contenders:
                contender.cancel()
            await asyncio.gather(*contenders, return_exceptions=True)
        winner = next(iter(done))
        if self._operator is not None and winner is not operator:
            self._operator.provisioned_elsewhere()
        return winner.result()

    async def _rounds(self) -> ProvisionedSecrets:
        while True:
            for source in self._automatic:
                self.attempts += 1
                try:
                    return await source.obtain()
                except (SourceUnavailable, AttestationError, httpx.HTTPError, OSError) as error:
                    logger.warning("provisioning: %s did not deliver: %s: %s", source.name, type(error).__name__, error)
            await self._sleep(self._retry_seconds)
