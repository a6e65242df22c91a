"""The attested client: talk to a memwal-enclave only after its attestation binds the TLS channel.

::

    from datetime import datetime, timezone
    from attestation import TrustRoot, load_expected_pcrs
    from attestation.client import AttestedClient

    async with AttestedClient.connect(
        "https://enclave.example:8443",
        expected_pcrs=load_expected_pcrs(open("pcrs.json").read()),
        trust_root=TrustRoot.aws(),
        now=lambda: datetime.now(timezone.utc),
        config_hash=bytes.fromhex(published_config_sha384),   # optional
    ) as session:
        response = await session.http.get("/api/...")            # pinned TLS, signature checked
        memwal._client = session.http                             # the official SDK, unmodified

Procedure of :meth:`AttestedClient.connect` (each step raises its own error):

    (1) connect    TLS to the URL, certificate recorded but not yet trusted (it is self-signed)
    (2) challenge  GET /attestation?nonce=<32 fresh bytes> on that same connection (≤ 16 KiB)
    (3) verify     Verifier.verify_live: chain, signature, age, nonce, debug mode, expected PCRs   → AttestationError
    (4) layout     user_data is a v1 block, public_key a 32-byte Ed25519 key, config hash matches → PolicyError
    (5) binding    SHA-256(SPKI of the live peer certificate) == the attested one                 → ChannelBindingError
    (6) pin        a new httpx.AsyncClient whose transport for the enclave's origin trusts only that
                   certificate and re-checks its SPKI in every handshake, and which verifies
                   x-enclave-signature on every enclave response (except /attestation) with the
                   attested identity key                                                     → ResponseSignatureError
                   Other origins (an SDK also reads Sui RPC through the client) use the default
                   CA-verified transport and are not signature-checked.

Pass ``now`` (a clock); nothing here reads the system time. Closing the session closes ``http``:
an SDK holding it then fails (its fallback client does not trust the self-signed certificate).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from attestation.errors import ResponseSignatureError, UserDataError
from attestation.response_signature import verify_response_signature
from attestation.user_data import EnclaveUserData, spki_sha256

from .cose import MAX_DOCUMENT_SIZE
from .document import VerifiedDocument
from .errors import DecodeError, PolicyError
from .policy import AllOf, PCRs, Policy
from .provisioning import seal_secrets
from .trust import TrustRoot
from .verifier import Verifier

NONCE_SIZE = 32
IDENTITY_KEY_SIZE = 32
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
UNSIGNED_PATHS = ("/attestation",)
Clock = Callable[[], datetime]
Observer = Callable[[str], None]


class ChannelBindingError(PolicyError):
    """The live TLS certificate is not the one the attestation document binds."""


@dataclass(frozen=True)
class AttestedEnclave:
    """What step (3)–(5) established about the peer."""

    document: VerifiedDocument
    document_sha256: bytes
    binding: EnclaveUserData
    identity_public_key: bytes
    certificate_der: bytes


class EnclaveBinding:
    """Policy: user_data is a v1 memwal-enclave block and public_key an Ed25519 key; optional config hash."""

    def __init__(self, config_hash: bytes | None = None) -> None:
        if config_hash is not None and (not isinstance(config_hash, bytes) or len(config_hash) != 48):
            raise ValueError("config_hash must be 48 bytes (SHA-384)")
        self.config_hash = config_hash

    def verify(self, document: VerifiedDocument) -> None:
        try:
            binding = EnclaveUserData.decode(document.user_data)
        except UserDataError as error:
            raise PolicyError(f"user_data: {error}") from None
        if document.public_key is None or len(document.public_key) != IDENTITY_KEY_SIZE:
            raise PolicyError("public_key is not a 32-byte Ed25519 identity key")
        if self.config_hash is not None and not hmac.compare_digest(binding.configuration_sha384, self.config_hash):
            raise PolicyError(
                f"configuration hash mismatch: expected {self.config_hash.hex()}, "
                f"enclave runs {binding.configuration_sha384.hex()}"
            )


class _SpkiCheckingSSLObject(ssl.SSLObject):
    """Re-checks the peer's SPKI after every handshake (set per context through a subclass)."""

    expected_spki_sha256 = b""

    def do_handshake(self) -> None:
        super().do_handshake()
        certificate = self.getpeercert(binary_form=True)
        if certificate is None or not hmac.compare_digest(spki_sha256(certificate), self.expected_spki_sha256):
            raise ssl.SSLCertVerificationError("peer certificate key is not the attested enclave key")


def pinned_ssl_context(certificate_der: bytes) -> ssl.SSLContext:
    """A client context that trusts exactly this (self-signed) certificate and checks its SPKI per handshake."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # The identity is the pinned key, not a name: the enclave may be reached through any host name or IP.
    context.check_hostname = False
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(cadata=certificate_der)
    context.sslobject_class = type(
        "PinnedSSLObject", (_SpkiCheckingSSLObject,), {"expected_spki_sha256": spki_sha256(certificate_der)}
    )
    return context


def _unverified_ssl_context() -> ssl.SSLContext:
    # Step (1) only: the certificate is self-signed and becomes trusted in step (5) or never.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


@dataclass(frozen=True)
class AttestedSession:
    """A verified enclave and an httpx client pinned to it (``base_url`` = the enclave URL)."""

    enclave: AttestedEnclave
    http: httpx.AsyncClient
    url: str

    @property
    def identity_public_key(self) -> bytes:
        return self.enclave.identity_public_key


def _ignore(line: str) -> None:
    pass


async def attest(
    url: str,
    *,
    expected_pcrs: PCRs,
    trust_root: TrustRoot,
    now: Clock,
    config_hash: bytes | None = None,
    rng: Callable[[int], bytes] = os.urandom,
    observer: Observer = _ignore,
    extra_policy: Policy | None = None,
    timeout: httpx.Timeout = DEFAULT_TIMEOUT,
) -> AttestedEnclave:
    """Steps (1)–(5): return the verified enclave, or raise."""
    nonce = rng(NONCE_SIZE)
    async with httpx.AsyncClient(verify=_unverified_ssl_context(), timeout=timeout) as bootstrap:
        # (1) + (2): one connection; the certificate we record is the one that served the document.
        async with bootstrap.stream(
            "GET", url.rstrip("/") + "/attestation", params={"nonce": nonce.hex()}, headers={"accept": "application/cbor"}
        ) as response:
            if response.status_code != 200:
                raise DecodeError(f"GET /attestation answered {response.status_code}")
            ssl_object = response.extensions["network_stream"].get_extra_info("ssl_object")
            if ssl_object is None:
                raise ChannelBindingError("the enclave URL is not served over TLS")
            certificate_der = ssl_object.getpeercert(binary_form=True)
            raw = bytearray()
            async for chunk in response.aiter_bytes():
                raw += chunk
                if len(raw) > MAX_DOCUMENT_SIZE:
                    raise DecodeError(f"attestation response is larger than {MAX_DOCUMENT_SIZE} bytes")
    observer(f"connect: TLS peer certificate SPKI sha256 {spki_sha256(certificate_der).hex()}")
    observer(f"challenge: {len(raw)}-byte document for nonce {nonce.hex()}")
    binding_policy = EnclaveBinding(config_hash)
    policies: list[Policy] = [expected_pcrs, binding_policy]
    if extra_policy is not None:
        policies.append(extra_policy)
    # (3) + (4)
    document = Verifier(trust_root=trust_root).verify_live(
        bytes(raw), policy=AllOf(policies), nonce=nonce, now=now(), observer=observer
    )
    binding = EnclaveUserData.decode(document.user_data)
    observer(
        "layout: user_data MWE1, config sha384 "
        + binding.configuration_sha384.hex()
        + (" (matches --config-hash)" if config_hash else " (NOT checked: no config hash given)")
    )
    # (5)
    if not hmac.compare_digest(spki_sha256(certificate_der), binding.tls_spki_sha256):
        raise ChannelBindingError("the TLS certificate that served the document is not the one the document binds")
    observer("binding: live TLS certificate key is the attested one")
    if document.public_key is None:  # EnclaveBinding already refused this; keeps the type exact
        raise PolicyError("public_key is absent")
    return AttestedEnclave(
        document=document,
        document_sha256=hashlib.sha256(bytes(raw)).digest(),
        binding=binding,
        identity_public_key=document.public_key,
        certificate_der=certificate_der,
    )


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port or {"https": 443, "http": 80}.get(url.scheme)


def signature_checking_hook(
    identity_public_key: bytes, now: Clock, origin: httpx.URL
) -> Callable[[httpx.Response], Awaitable[None]]:
    """An httpx response hook verifying x-enclave-signature on the enclave's responses.

    Requests to other origins (the SDK also reads Sui RPC through its client) are not checked here;
    they go through the ordinary CA-verified transport.
    """
    enclave_origin = _origin(origin)

    async def check(response: httpx.Response) -> None:
        request = response.request
        if _origin(request.url) != enclave_origin or request.url.path in UNSIGNED_PATHS:
            return
        await response.aread()
        try:
            body = request.content
        except httpx.RequestNotRead:
            raise ResponseSignatureError("cannot verify the response to a streamed request body") from None
        verify_response_signature(
            identity_public_key,
            method=request.method,
            path_and_query=request.url.raw_path,
            request_body=body,
            status=response.status_code,
            response_body=response.content,
            headers=response.headers,
            now_ms=int(now().timestamp() * 1000),
        )

    return check


class AttestedClient:
    """Entry point: ``async with AttestedClient.connect(url, ...) as session``."""

    @classmethod
    @asynccontextmanager
    async def connect(
        cls,
        url: str,
        *,
        expected_pcrs: PCRs,
        trust_root: TrustRoot,
        now: Clock,
        config_hash: bytes | None = None,
        rng: Callable[[int], bytes] = os.urandom,
        observer: Observer = _ignore,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        **client_options: Any,
    ) -> AsyncIterator[AttestedSession]:
        enclave = await attest(
            url, expected_pcrs=expected_pcrs, trust_root=trust_root, now=now, config_hash=config_hash,
            rng=rng, observer=observer, timeout=timeout,
        )  # fmt: skip
        # (6): only the enclave's origin is pinned; anything else the caller (an SDK) fetches through
        # this client uses the default, CA-verified transport.
        origin = httpx.URL(url.rstrip("/"))
        pinned = httpx.AsyncHTTPTransport(verify=pinned_ssl_context(enclave.certificate_der))
        http = httpx.AsyncClient(
            base_url=origin,
            mounts={f"{origin.scheme}://{origin.host}:{_origin(origin)[2]}": pinned},
            timeout=timeout,
            event_hooks={"response": [signature_checking_hook(enclave.identity_public_key, now, origin)]},
            **client_options,
        )
        try:
            yield AttestedSession(enclave=enclave, http=http, url=url.rstrip("/"))
        finally:
            await http.aclose()


async def provision_secrets(
    session: AttestedSession,
    secrets: Mapping[str, str],
    *,
    rng: Callable[[int], bytes] = os.urandom,
) -> httpx.Response:
    """Seal ``secrets`` to the attested provisioning key, bound to the verified document; POST /provision."""
    envelope = seal_secrets(
        secrets,
        recipient_public_key=session.enclave.binding.provisioning_public_key,
        document_sha256=session.enclave.document_sha256,
        rng=rng,
    )
    return await session.http.post(
        "/provision", content=envelope, headers={"content-type": "application/octet-stream"}
    )
