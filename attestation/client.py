"""The attested client: talk to a memwal-enclave only after its attestation binds the TLS channel.

::

    from datetime import datetime, timezone
    from attestation.binding import EnclavePolicy
    from attestation.client import AttestedClient

    policy = EnclavePolicy.published(pcrs=["pcrs.json"], manifests=["manifest.toml"])   # or configuration_hashes=
    async with AttestedClient.connect(
        "https://enclave.example:8443", policy=policy, now=lambda: datetime.now(timezone.utc)
    ) as session:
        response = await session.http.get("/health")            # attested TLS, signature checked

The official SDK goes through the same machinery with ``memwal_enclave.AttestedMemWal`` (no private
attribute in user code).

Attesting is remote.py's procedure (connect, challenge, verify, binding, channel). Then (transport.py) every handshake with the origin must present an attested key, and every response must
carry a valid ``x-enclave-signature`` from the identity key of the enclave on that connection
(→ ResponseSignatureError). A handshake with an unknown key (restart, load balancer) attests again.

Pass ``now`` (a clock); nothing here reads the system time.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from .binding import EnclavePolicy
from .policy import PCRs
from .provisioning import seal_secrets
from .remote import (
    DEFAULT_TIMEOUT,
    AttestedEnclave,
    ChannelBindingError,
    Clock,
    Observer,
    attest,
    pinned_ssl_context,
)
from .transport import AttestedTransport, EnclaveCache
from .trust import TrustRoot

__all__ = [
    "AttestedClient",
    "AttestedEnclave",
    "AttestedSession",
    "ChannelBindingError",
    "attest",
    "attested_http_client",
    "pinned_ssl_context",
    "provision_secrets",
]


def _ignore(line: str) -> None:
    pass


@dataclass(frozen=True)
class AttestedSession:
    """The first verified enclave and an httpx client that stays attested (``base_url`` = the enclave URL)."""

    enclave: AttestedEnclave
    http: httpx.AsyncClient
    url: str

    @property
    def identity_public_key(self) -> bytes:
        return self.enclave.identity_public_key


def attested_http_client(
    url: str,
    *,
    policy: EnclavePolicy,
    now: Clock,
    cache: EnclaveCache | None = None,
    rng: Callable[[int], bytes] = os.urandom,
    observer: Observer = _ignore,
    timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    **client_options: Any,
) -> httpx.AsyncClient:
    """An httpx client for ``url`` whose transport attests (and re-attests) the enclave (transport.py)."""
    transport = AttestedTransport(url, policy=policy, now=now, cache=cache, rng=rng, observer=observer, timeout=timeout)
    return httpx.AsyncClient(base_url=transport.url, transport=transport, timeout=timeout, **client_options)


class AttestedClient:
    """Entry point: ``async with AttestedClient.connect(url, policy=..., now=...) as session``."""

    @classmethod
    @asynccontextmanager
    async def connect(
        cls,
        url: str,
        *,
        now: Clock,
        policy: EnclavePolicy | None = None,
        expected_pcrs: PCRs | None = None,
        trust_root: TrustRoot | None = None,
        config_hash: bytes | None = None,
        rng: Callable[[int], bytes] = os.urandom,
        observer: Observer = _ignore,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        **client_options: Any,
    ) -> AsyncIterator[AttestedSession]:
        """Attest now (raise if the enclave is not acceptable), then yield a client that stays attested.

        Give ``policy``, or ``expected_pcrs`` (+ ``trust_root``, ``config_hash``) for a single published set.
        """
        if policy is None:
            if expected_pcrs is None:
                raise ValueError("give policy= or expected_pcrs=")
            policy = EnclavePolicy(
                (expected_pcrs,), (config_hash,) if config_hash else (), trust_root or TrustRoot.aws()
            )
        transport = AttestedTransport(url, policy=policy, now=now, rng=rng, observer=observer, timeout=timeout)
        http = httpx.AsyncClient(base_url=transport.url, transport=transport, timeout=timeout, **client_options)
        try:
            enclave = await transport.attest()
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
