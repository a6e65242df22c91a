"""An httpx transport that talks to a memwal-enclave only over connections its attestation vouches for.

Every TLS handshake with the enclave's origin is checked against the keys of enclaves this process has
attested (:class:`EnclaveCache`). A handshake with any other key — the enclave restarted, or a load balancer
sent the connection to another enclave — fails before a byte of the request is sent; the transport then
attests again (fresh nonce, remote.py ``attest``), remembers the new enclave and retries, up to
``MAX_ATTESTATIONS_PER_REQUEST`` times. Every response from the origin (except ``/attestation``) must carry
a valid ``x-enclave-signature`` from the identity key of the enclave on *that* connection.

A verified enclave stays trusted until its document's signing certificate expires (``valid_until``); a
new connection after that attests again. The cache holds no event-loop objects, so one cache serves
clients built in different loops and threads (the SDK's sync wrapper builds one per call).

Requests to other origins (an SDK also reads Sui through its client) go through an ordinary CA-verified
transport and are not signature-checked.
"""

from __future__ import annotations

import asyncio
import hmac
import os
import ssl
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime

import httpx

from .binding import EnclavePolicy
from .errors import ResponseSignatureError
from .remote import (
    DEFAULT_TIMEOUT,
    UNSIGNED_PATHS,
    AttestedEnclave,
    Clock,
    Observer,
    attest,
    same_origin,
    unverified_ssl_context,
)
from .response_signature import verify_response_signature
from .user_data import spki_sha256

MAX_ATTESTATIONS_PER_REQUEST = 8  # a load balancer over n enclaves needs up to ~n draws to hit a new one
MAX_CACHED_ENCLAVES = 64


class UnattestedPeerKey(ssl.SSLCertVerificationError):
    """The TLS peer's key belongs to no enclave this client has attested (or its attestation expired)."""

    def __init__(self, tls_spki_sha256: bytes) -> None:
        super().__init__("peer certificate key is not the attested enclave key")
        self.tls_spki_sha256 = tls_spki_sha256


class EnclaveCache:
    """Attested enclaves by TLS SPKI digest; thread-safe, bounded, least recently attested dropped first."""

    def __init__(self, *, max_entries: int = MAX_CACHED_ENCLAVES) -> None:
        self._entries: OrderedDict[bytes, AttestedEnclave] = OrderedDict()
        self._lock = threading.Lock()
        self._max_entries = max_entries

    def add(self, enclave: AttestedEnclave) -> None:
        with self._lock:
            self._entries[enclave.binding.tls_spki_sha256] = enclave
            self._entries.move_to_end(enclave.binding.tls_spki_sha256)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

    def trusted(self, tls_spki_sha256: bytes, now: datetime) -> AttestedEnclave | None:
        """The enclave with this TLS key, if its attestation is still within its lifetime."""
        enclave = self.get(tls_spki_sha256)
        return enclave if enclave is not None and now < enclave.valid_until else None

    def get(self, tls_spki_sha256: bytes) -> AttestedEnclave | None:
        """The enclave with this TLS key, expired or not (a live connection keeps its identity key)."""
        with self._lock:
            for spki, enclave in self._entries.items():
                if hmac.compare_digest(spki, tls_spki_sha256):
                    return enclave
        return None

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def latest(self) -> AttestedEnclave | None:
        with self._lock:
            return next(reversed(self._entries.values()), None)


class _CheckedSSLObject(ssl.SSLObject):
    """After every handshake: the peer's SPKI must be an attested enclave's (set per context via a subclass)."""

    accepts: Callable[[bytes], bool] = staticmethod(lambda spki: False)

    def do_handshake(self) -> None:
        super().do_handshake()
        certificate = self.getpeercert(binary_form=True)
        spki = spki_sha256(certificate) if certificate else b""
        if not type(self).accepts(spki):
            raise UnattestedPeerKey(spki)


def attested_ssl_context(cache: EnclaveCache, now: Clock) -> ssl.SSLContext:
    """A client context that accepts exactly the TLS keys of currently attested enclaves.

    The certificates are self-signed, so the check is on the key (what the attestation binds), not a chain.
    """
    context = unverified_ssl_context()

    def accepts(spki: bytes) -> bool:
        return cache.trusted(spki, now()) is not None

    context.sslobject_class = type("AttestedSSLObject", (_CheckedSSLObject,), {"accepts": staticmethod(accepts)})
    return context


class AttestedTransport(httpx.AsyncBaseTransport):
    """See the module docstring. One per client (it owns a connection pool); the cache may be shared."""

    def __init__(
        self,
        url: str,
        *,
        policy: EnclavePolicy,
        now: Clock,
        cache: EnclaveCache | None = None,
        rng: Callable[[int], bytes] = os.urandom,
        observer: Observer = lambda line: None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        self.url = url.rstrip("/")
        self.origin = httpx.URL(self.url)
        self.policy = policy
        self.cache = cache if cache is not None else EnclaveCache()
        self._now = now
        self._rng = rng
        self._observer = observer
        self._timeout = timeout
        self._pinned = httpx.AsyncHTTPTransport(verify=attested_ssl_context(self.cache, now))
        self._other = httpx.AsyncHTTPTransport()
        self._attesting: asyncio.Lock | None = None

    async def attest(self) -> AttestedEnclave:
        """Attest whichever enclave answers at the URL now (fresh nonce) and trust its key."""
        if self._attesting is None:
            self._attesting = asyncio.Lock()
        async with self._attesting:
            enclave = await attest(
                self.url, policy=self.policy, now=self._now, rng=self._rng, observer=self._observer, timeout=self._timeout
            )
            self.cache.add(enclave)
            return enclave

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not same_origin(request.url, self.origin):
            return await self._other.handle_async_request(request)
        await request.aread()
        if len(self.cache) == 0:
            await self.attest()  # the first request: attest before any handshake that would fail anyway
        attestations = 0
        while attestations < MAX_ATTESTATIONS_PER_REQUEST:
            try:
                response = await self._pinned.handle_async_request(request)
            except httpx.ConnectError as error:
                unknown = _unattested_peer(error)
                if unknown is None:
                    raise
                # A new enclave (a restart, or another one behind a load balancer): attest until the key the
                # handshake showed is among the attested ones (an attestation may reach another enclave).
                while attestations < MAX_ATTESTATIONS_PER_REQUEST:
                    attestations += 1
                    if hmac.compare_digest((await self.attest()).binding.tls_spki_sha256, unknown) or not unknown:
                        break
                continue
            return await self._checked(request, response)
        raise httpx.ConnectError(
            f"{MAX_ATTESTATIONS_PER_REQUEST} attestations in a row, and the next connection still reached an "
            "enclave whose key was not attested (more enclaves behind the address than expected?)",
            request=request,
        )

    async def _checked(self, request: httpx.Request, response: httpx.Response) -> httpx.Response:
        try:
            body = b"".join([chunk async for chunk in response.aiter_raw()])
        finally:
            await response.aclose()
        if request.url.path not in UNSIGNED_PATHS:
            enclave = self.cache.get(_connection_spki(response))
            if enclave is None:
                raise ResponseSignatureError("the response came over a connection to no attested enclave")
            verify_response_signature(
                enclave.identity_public_key,
                method=request.method,
                path_and_query=request.url.raw_path,
                request_body=request.content,
                status=response.status_code,
                response_body=body,
                headers=response.headers,
                now_ms=int(self._now().timestamp() * 1000),
            )
        return httpx.Response(
            response.status_code, headers=response.headers, content=body, extensions=response.extensions, request=request
        )

    async def aclose(self) -> None:
        await self._pinned.aclose()
        await self._other.aclose()


def _connection_spki(response: httpx.Response) -> bytes:
    stream = response.extensions.get("network_stream")
    ssl_object = stream.get_extra_info("ssl_object") if stream is not None else None
    certificate = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    if not certificate:
        raise ResponseSignatureError("cannot tell which enclave served the response (no TLS peer certificate)")
    return spki_sha256(certificate)


def _unattested_peer(error: BaseException) -> bytes | None:
    """The SPKI digest an :class:`UnattestedPeerKey` in ``error``'s chain names (b"" if only its message
    survived the wrapping), or None if the connection failed for another reason."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    for link in chain:
        if isinstance(link, UnattestedPeerKey):
            return link.tls_spki_sha256
    return b"" if any("not the attested enclave key" in str(link) for link in chain) else None
