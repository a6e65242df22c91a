"""``AttestedMemWal`` / ``AttestedMemWalSync``: the SDK's clients with an attested HTTP client underneath.

The SDK (memwal 0.2.x) builds its ``httpx.AsyncClient`` lazily in one place and rebuilds it whenever the
previous one is closed: ``close()``, and the sync wrapper closes it after every call (each call runs in a
throwaway event loop). The subclass replaces that one factory, so every client the SDK ever builds is an
attested one; all of them share one :class:`EnclaveConnection`, so a verified enclave is not attested again
per call. Nothing else of the SDK changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
from memwal import MemWal, MemWalSync
from memwal.types import MemWalConfig

from attestation.binding import EnclavePolicy
from attestation.client import AttestedEnclave, attested_http_client
from attestation.policy import PCRs
from attestation.transport import AttestedTransport, EnclaveCache
from attestation.trust import TrustRoot

from .sessions import SessionChains, SessionChainsSync

Clock = Callable[[], datetime]
PcrSource = PCRs | str | bytes | Path
# The SDK's own default for its client; connecting gets less, like the attested bootstrap.
SDK_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
T = TypeVar("T")


def utc_now() -> datetime:
    return datetime.now(UTC)


def _listed(value: T | Iterable[T] | None, single: tuple[type, ...]) -> list[T]:
    if value is None:
        return []
    if isinstance(value, single):
        return [value]  # type: ignore[list-item]
    return list(value)  # type: ignore[arg-type]


class EnclaveConnection:
    """One enclave URL, what its operator published, and the enclaves attested there so far.

    Every HTTP client it builds (:meth:`http_client`) shares the attested enclaves, so clients created in
    other event loops or threads reuse a verification until the document's certificate expires.
    """

    def __init__(self, url: str, *, policy: EnclavePolicy, clock: Clock = utc_now, timeout: httpx.Timeout = SDK_TIMEOUT) -> None:
        if not url.startswith("https://"):
            raise ValueError(f"the enclave URL must be https:// (TLS terminates inside the enclave), got {url!r}")
        policy.require_complete()
        self.url = url.rstrip("/")
        self.policy = policy
        self.cache = EnclaveCache()
        self._clock = clock
        self._timeout = timeout

    @classmethod
    def published(
        cls,
        url: str,
        *,
        pcrs: PcrSource | Iterable[PcrSource],
        config_hash: str | bytes | Iterable[str | bytes] | None = None,
        manifest: str | Path | Iterable[str | Path] | None = None,
        trust_root: TrustRoot | None = None,
        clock: Clock = utc_now,
    ) -> EnclaveConnection:
        """``pcrs``: pcrs.json paths, JSON text or ``PCRs`` (a list accepts any of them: rollouts);
        ``config_hash`` (SHA-384, hex or bytes) and/or ``manifest`` (paths): the accepted configurations;
        ``trust_root``: the AWS Nitro root unless given (a simulator's test root in development)."""
        policy = EnclavePolicy.published(
            pcrs=_listed(pcrs, (PCRs, str, bytes, Path)),
            configuration_hashes=_listed(config_hash, (str, bytes)),
            manifests=_listed(manifest, (str, Path)),
            trust_root=trust_root,
        )
        return cls(url, policy=policy, clock=clock)

    def http_client(self) -> httpx.AsyncClient:
        """A new client for the current event loop; attests on its first request if nothing is cached."""
        return attested_http_client(self.url, policy=self.policy, now=self._clock, cache=self.cache, timeout=self._timeout)

    async def attest(self) -> AttestedEnclave:
        """Attest whichever enclave answers now (fresh nonce), remember it, and return what it attested."""
        transport = AttestedTransport(self.url, policy=self.policy, now=self._clock, cache=self.cache, timeout=self._timeout)
        try:
            return await transport.attest()
        finally:
            await transport.aclose()

    @property
    def attested(self) -> AttestedEnclave | None:
        """The enclave attested most recently, if any."""
        return self.cache.latest()


class AttestedMemWal(SessionChains, MemWal):  # type: ignore[misc]  # the SDK ships no type information
    """``memwal.MemWal`` whose HTTP client is always an attested one (see the package docstring)."""

    def __init__(self, config: MemWalConfig, *, connection: EnclaveConnection | None = None) -> None:
        if connection is None:
            raise TypeError("build it with AttestedMemWal.create(..., pcrs=..., manifest=... or config_hash=...)")
        if connection.url != config.server_url.rstrip("/"):
            raise ValueError("the connection's URL and the SDK's server_url differ")
        super().__init__(config)
        self._attested_connection = connection

    @classmethod
    def create(
        cls,
        key: str,
        account_id: str,
        server_url: str | None = None,
        namespace: str = "default",
        env: str | None = None,
        *,
        pcrs: PcrSource | Iterable[PcrSource] | None = None,
        config_hash: str | bytes | Iterable[str | bytes] | None = None,
        manifest: str | Path | Iterable[str | Path] | None = None,
        trust_root: TrustRoot | None = None,
        clock: Clock = utc_now,
    ) -> AttestedMemWal:
        """``MemWal.create`` plus what the operator published; see :meth:`EnclaveConnection.published`."""
        if server_url is None or env is not None:
            raise ValueError("give server_url= (the enclave's https URL); env presets name hosted relayers, not enclaves")
        if pcrs is None:
            raise ValueError("give pcrs= (the published pcrs.json): without it any enclave image would be accepted")
        connection = EnclaveConnection.published(
            server_url, pcrs=pcrs, config_hash=config_hash, manifest=manifest, trust_root=trust_root, clock=clock
        )
        return cls(MemWalConfig(key=key, account_id=account_id, server_url=server_url, namespace=namespace), connection=connection)

    @property
    def connection(self) -> EnclaveConnection:
        return self._attested_connection

    async def attest(self) -> AttestedEnclave:
        """Attest now (optional: the first request does it anyway) and return what the enclave attested."""
        return await self._attested_connection.attest()

    @property
    def _http(self) -> httpx.AsyncClient:
        # The SDK's lazy client factory (memwal.client.MemWal._http), the one place it builds a client.
        client: httpx.AsyncClient | None = self._client  # type: ignore[has-type]  # the SDK's attribute, untyped
        if client is None or client.is_closed:
            client = self._attested_connection.http_client()
            self._client = client
        return client


class AttestedMemWalSync(SessionChainsSync, MemWalSync):  # type: ignore[misc]  # the SDK ships no type information
    """``memwal.MemWalSync`` over an :class:`AttestedMemWal` (each call gets a fresh attested client)."""

    def __init__(self, inner: AttestedMemWal) -> None:
        if not isinstance(inner, AttestedMemWal):
            raise TypeError("AttestedMemWalSync wraps an AttestedMemWal")
        super().__init__(inner)
        self.attested_client = inner

    @classmethod
    def create(
        cls,
        key: str,
        account_id: str,
        server_url: str | None = None,
        namespace: str = "default",
        env: str | None = None,
        **published: Any,
    ) -> AttestedMemWalSync:
        """Same parameters as :meth:`AttestedMemWal.create`."""
        return cls(AttestedMemWal.create(key, account_id, server_url, namespace, env, **published))

    @property
    def connection(self) -> EnclaveConnection:
        return self.attested_client.connection

    def attest(self) -> AttestedEnclave:
        """Synchronous :meth:`AttestedMemWal.attest`."""
        result: AttestedEnclave = self._run(self.attested_client.attest())
        return result
