"""Secrets from a peer: a new enclave obtains them from an already provisioned one after mutual attestation.

No leader, no secret on the host. Both sides run the same image and configuration, so each checks that
the other's attestation shows its own PCR0/1/2 and its own configuration hash (user_data and PCR16):

    newcomer                                              provisioned peer (same deployment)
    (1) attest the peer: GET /attestation?nonce=N1 over the egress tunnel, TLS recorded; the document must
        chain to the root, be fresh, carry N1, show our PCR0-2 and configuration, and bind that TLS key
    (2) POST /peer/challenge (TLS pinned to that key)  →  N2: 32 fresh bytes, single use, 60 s
    (3) our NSM document: nonce N2, user_data = our v1 block (our X25519 provisioning key), public_key =
        our identity key
    (4) POST /peer/secrets with it                      →  the peer verifies it like (1) (its own PCRs and
                                                           configuration, nonce N2 it issued and not yet
                                                           used) and answers an MWP1 envelope: the secrets
                                                           sealed to our X25519 key, bound to SHA-256(our doc)
    (5) open the envelope with our provisioning key; it must name our document

The connection runs through the host's vsock relay (an [[egress]] route to the peer's public address), with
TLS end to end between the two enclaves; the envelope is sealed to a key that never left the newcomer.
A peer that is not provisioned (yet) answers 503 and the newcomer tries the next peer, then the next round.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import ssl
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import datetime

import httpx
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from attestation.binding import EnclaveBinding, EnclavePolicy
from attestation.cose import MAX_DOCUMENT_SIZE
from attestation.errors import AttestationError
from attestation.nsm import Attester
from attestation.policy import AllOf, PCRs
from attestation.provisioning import MAX_ENVELOPE_SIZE, EnvelopeError, open_envelope, seal_secrets
from attestation.remote import attest, pinned_ssl_context, unverified_ssl_context
from attestation.trust import TrustRoot
from attestation.user_data import EnclaveUserData
from attestation.verifier import Verifier

from .errors import SourceUnavailable
from .provisioning import ProvisionedSecrets

logger = logging.getLogger("memwal.enclave.peer_provisioning")

IMAGE_PCRS = (0, 1, 2)
NONCE_SIZE = 32
CHALLENGE_TTL_SECONDS = 60.0
MAX_OPEN_CHALLENGES = 1024
PEER_TIMEOUT = httpx.Timeout(15.0, connect=5.0)
PEER_PATHS = ("/peer/challenge", "/peer/secrets")
Clock = Callable[[], datetime]
TransportFactory = Callable[[ssl.SSLContext | None], httpx.AsyncBaseTransport]  # TLS context → a transport through egress


def own_image_pcrs(attester: Attester) -> PCRs:
    """This enclave's PCR0/1/2 as the NSM reports them: a peer must show the same image."""
    return PCRs({index: attester.describe_pcr(index)[1] for index in IMAGE_PCRS})


class Challenges:
    """Nonces this enclave issued to newcomers: single use, ``CHALLENGE_TTL_SECONDS``, bounded."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, rng: Callable[[int], bytes] = os.urandom) -> None:
        self._clock = clock
        self._rng = rng
        self._open: OrderedDict[bytes, float] = OrderedDict()

    def issue(self) -> bytes:
        nonce = self._rng(NONCE_SIZE)
        self._open[nonce] = self._clock()
        while len(self._open) > MAX_OPEN_CHALLENGES:
            self._open.popitem(last=False)
        return nonce

    def consume(self, nonce: bytes | None) -> bool:
        """True once for a nonce issued within the TTL; it is gone afterwards."""
        for issued, at in list(self._open.items()):
            if nonce is not None and hmac.compare_digest(issued, nonce):
                del self._open[issued]
                return self._clock() - at <= CHALLENGE_TTL_SECONDS
        return False


class PeerProvider:
    """The provisioned side: ``POST /peer/challenge`` and ``POST /peer/secrets`` (see the module docstring)."""

    def __init__(
        self,
        *,
        attester: Attester,
        trust_root: TrustRoot,
        configuration_digest: bytes,
        secrets: Callable[[], ProvisionedSecrets | None],
        clock: Clock,
        challenges: Challenges | None = None,
    ) -> None:
        self._attester = attester
        self._verifier = Verifier(trust_root=trust_root)
        self._configuration_digest = configuration_digest
        self._secrets = secrets
        self._clock = clock
        self._challenges = challenges or Challenges()

    async def challenge(self, request: Request) -> Response:
        if self._secrets() is None:
            return JSONResponse({"error": "not provisioned"}, status_code=503)
        return JSONResponse({"nonce": self._challenges.issue().hex()})

    async def secrets(self, request: Request) -> Response:
        secrets = self._secrets()
        if secrets is None:
            return JSONResponse({"error": "not provisioned"}, status_code=503)
        document = bytearray()
        async for chunk in request.stream():
            document += chunk
            if len(document) > MAX_DOCUMENT_SIZE:
                return JSONResponse({"error": "attestation document too large"}, status_code=413)
        raw = bytes(document)
        policy = AllOf([own_image_pcrs(self._attester), EnclaveBinding((self._configuration_digest,))])
        try:
            verified = self._verifier.verify_live(raw, policy=policy, nonce=None, now=self._clock())
        except AttestationError as error:
            logger.warning("peer provisioning refused a newcomer: %s: %s", type(error).__name__, error)
            return JSONResponse({"error": "attestation refused"}, status_code=403)
        if not self._challenges.consume(verified.nonce):
            logger.warning("peer provisioning refused a newcomer: the nonce is not an open challenge of this enclave")
            return JSONResponse({"error": "unknown or used challenge"}, status_code=403)
        binding = EnclaveUserData.decode(verified.user_data)
        envelope = seal_secrets(
            secrets.values, recipient_public_key=binding.provisioning_public_key, document_sha256=hashlib.sha256(raw).digest()
        )
        logger.info("peer provisioning: sealed %d secret(s) to an attested newcomer (%s)", len(secrets.values), verified.module_id)
        return Response(envelope, media_type="application/octet-stream")


class PeerSource:
    """The newcomer's side: a :class:`~enclave.provisioning.SecretSource` over the manifest's peers."""

    name = "peer"

    def __init__(
        self,
        peers: Sequence[str],
        *,
        attester: Attester,
        trust_root: TrustRoot,
        configuration_digest: bytes,
        user_data: bytes,
        identity_public_key: bytes,
        provisioning_key: X25519PrivateKey,
        transport: TransportFactory,
        clock: Clock,
    ) -> None:
        self._peers = tuple(peers)
        self._attester = attester
        self._trust_root = trust_root
        self._configuration_digest = configuration_digest
        self._user_data = user_data
        self._identity_public_key = identity_public_key
        self._provisioning_key = provisioning_key
        self._transport = transport
        self._clock = clock

    async def obtain(self) -> ProvisionedSecrets:
        failures = []
        for peer in self._peers:
            try:
                return await self._from(peer)
            except (SourceUnavailable, AttestationError, httpx.HTTPError, EnvelopeError, OSError) as error:
                failures.append(f"{peer}: {type(error).__name__}: {error}")
        raise SourceUnavailable("no peer delivered: " + "; ".join(failures))

    async def _from(self, peer: str) -> ProvisionedSecrets:
        # (1) the peer must run our image and our configuration.
        policy = EnclavePolicy((own_image_pcrs(self._attester),), (self._configuration_digest,), self._trust_root)
        enclave = await attest(
            peer, policy=policy, now=self._clock, transport=self._transport(unverified_ssl_context()), timeout=PEER_TIMEOUT
        )
        pinned = self._transport(pinned_ssl_context(enclave.certificate_der))
        async with httpx.AsyncClient(base_url=peer, transport=pinned, timeout=PEER_TIMEOUT) as http:
            # (2)
            answer = await http.post("/peer/challenge")
            if answer.status_code != 200:
                raise SourceUnavailable(f"/peer/challenge answered {answer.status_code}")
            nonce = _nonce(answer)
            # (3)
            document = await asyncio.to_thread(
                self._attester.attestation, user_data=self._user_data, nonce=nonce, public_key=self._identity_public_key
            )
            # (4)
            response = await http.post("/peer/secrets", content=document, headers={"content-type": "application/cbor"})
            if response.status_code != 200:
                raise SourceUnavailable(f"/peer/secrets answered {response.status_code}")
            if len(response.content) > MAX_ENVELOPE_SIZE:
                raise SourceUnavailable("the peer's envelope is too large")
        # (5)
        opened = open_envelope(response.content, recipient_private_key=self._provisioning_key)
        if not hmac.compare_digest(opened.document_sha256, hashlib.sha256(document).digest()):
            raise SourceUnavailable("the peer's envelope is bound to another document")
        logger.info("secrets from peer %s: %s", peer, ", ".join(sorted(opened.secrets)))
        return ProvisionedSecrets(values=dict(opened.secrets), source="peer")


def _nonce(answer: httpx.Response) -> bytes:
    try:
        nonce = bytes.fromhex(answer.json()["nonce"])
    except (ValueError, KeyError, TypeError):
        raise SourceUnavailable("the peer's challenge is malformed") from None
    if len(nonce) != NONCE_SIZE:
        raise SourceUnavailable("the peer's challenge is not 32 bytes")
    return nonce
