"""Attest a remote memwal-enclave over TLS: one connection, a fresh nonce, the document bound to that connection.

Procedure of :func:`attest` (each step raises its own error):

    (1) connect    TLS to the URL, certificate recorded but not yet trusted (it is self-signed)
    (2) challenge  GET /attestation?nonce=<32 fresh bytes> on that same connection (≤ 16 KiB)
    (3) verify     Verifier.verify_live: chain, signature, age, nonce, debug mode, one of the published PCR sets
    (4) binding    user_data v1, Ed25519 identity key, PCR16 = the committed configuration, one of the
                   published configuration hashes (binding.EnclaveBinding)                        → PolicyError
    (5) channel    SHA-256(SPKI of the live peer certificate) == the attested one                 → ChannelBindingError

transport.py keeps a client attested after that; client.py is the entry point. Pass ``now`` (a clock).
"""


from __future__ import annotations

import hashlib
import hmac
import os
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from cryptography import x509

from .binding import EnclavePolicy
from .cose import MAX_DOCUMENT_SIZE
from .document import VerifiedDocument
from .errors import DecodeError, PolicyError
from .policy import AllOf, Policy
from .user_data import EnclaveUserData, spki_sha256
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
    """What steps (3)–(5) established about one enclave, and until when that holds."""

    document: VerifiedDocument
    document_sha256: bytes
    binding: EnclaveUserData
    identity_public_key: bytes
    certificate_der: bytes
    valid_until: datetime  # the document's signing certificate expires then: attest again after

    @property
    def configuration_sha384(self) -> bytes:
        return self.binding.configuration_sha384


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


def unverified_ssl_context() -> ssl.SSLContext:
    """Step (1) only, or with a key check added per handshake (transport.py): the certificate is self-signed
    and becomes trusted through the attestation or never."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _ignore(line: str) -> None:
    pass


async def attest(
    url: str,
    *,
    policy: EnclavePolicy,
    now: Clock,
    rng: Callable[[int], bytes] = os.urandom,
    observer: Observer = _ignore,
    extra_policy: Policy | None = None,
    timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    transport: httpx.AsyncBaseTransport | None = None,
) -> AttestedEnclave:
    """Steps (1)–(5): return the verified enclave, or raise.

    ``transport``: how to reach the URL (inside an enclave: its egress tunnels), with TLS that records but
    does not verify the peer certificate (``unverified_ssl_context``); default: a direct connection.
    """
    nonce = rng(NONCE_SIZE)
    options: dict[str, Any] = {"transport": transport} if transport is not None else {"verify": unverified_ssl_context()}
    async with httpx.AsyncClient(timeout=timeout, **options) as bootstrap:
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
    document_policy = policy.document_policy()
    if extra_policy is not None:
        document_policy = AllOf([document_policy, extra_policy])
    # (3) + (4)
    document = Verifier(trust_root=policy.trust_root).verify_live(
        bytes(raw), policy=document_policy, nonce=nonce, now=now(), observer=observer
    )
    binding = EnclaveUserData.decode(document.user_data)
    observer(
        "binding: user_data MWE1, PCR16 commits to configuration sha384 "
        + binding.configuration_sha384.hex()
        + (" (a published one)" if policy.checks_configuration else " (NOT CHECKED: no configuration hash given)")
    )
    # (5)
    if not hmac.compare_digest(spki_sha256(certificate_der), binding.tls_spki_sha256):
        raise ChannelBindingError("the TLS certificate that served the document is not the one the document binds")
    observer("channel: live TLS certificate key is the attested one")
    if document.public_key is None:  # EnclaveBinding already refused this; keeps the type exact
        raise PolicyError("public_key is absent")
    return AttestedEnclave(
        document=document,
        document_sha256=hashlib.sha256(bytes(raw)).digest(),
        binding=binding,
        identity_public_key=document.public_key,
        certificate_der=certificate_der,
        valid_until=x509.load_der_x509_certificate(document.certificate).not_valid_after_utc,
    )


def _default_port(url: httpx.URL) -> int | None:
    return url.port or {"https": 443, "http": 80}.get(url.scheme)


def same_origin(url: httpx.URL, origin: httpx.URL) -> bool:
    return (url.scheme, url.host, _default_port(url)) == (origin.scheme, origin.host, _default_port(origin))


