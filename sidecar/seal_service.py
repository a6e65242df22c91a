"""Seal through the key servers listed on chain: encrypt for an owner, decrypt with the client's session.

Key-server URLs and public keys are read from their on-chain ``KeyServer`` objects once and cached;
a server's ``aggregatorUrl`` in SEAL_SERVER_CONFIGS overrides its URL (committee aggregators).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping

import httpx

from chain import bcs
from chain.address import normalize_address
from chain.errors import ChainError, ChainUnavailable
from chain.reader import ChainReader
from memwal_common.environment import SealServerConfig
from sealcrypto import (
    EncryptedObject,
    KeyServerClient,
    KeyServerEndpoint,
    KeyServerError,
    KeyServerPublic,
    SealError,
    SessionError,
    SessionKey,
    build_seal_approve_ptb,
    decrypt_objects,
    encrypt,
)
from sidecar.errors import AccessDenied, BadInput, InvalidSession, UpstreamUnavailable


class SealService:
    def __init__(
        self,
        *,
        chain: ChainReader,
        http: httpx.AsyncClient,
        servers: tuple[SealServerConfig, ...],
        threshold: int,
        package_id: str,
        timeout_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._chain = chain
        self._http = http
        self._configs = servers
        self._threshold = threshold
        self._package_id = normalize_address(package_id)
        self._timeout = timeout_seconds
        self._clock = clock
        self._endpoints: list[KeyServerEndpoint] | None = None
        self._lock = asyncio.Lock()

    def check_package(self, package_id: str) -> None:
        try:
            if normalize_address(package_id) != self._package_id:
                raise BadInput("packageId is not the package this relayer serves")
        except ValueError:
            raise BadInput("packageId is not a Sui object id") from None

    async def endpoints(self) -> list[KeyServerEndpoint]:
        async with self._lock:
            if self._endpoints is None:
                endpoints = []
                for config in self._configs:
                    try:
                        info = await self._chain.key_server(config.object_id)
                    except ChainError as exc:
                        raise UpstreamUnavailable(f"cannot read key server {config.object_id}: {exc}") from None
                    url = config.aggregator_url or info.url
                    endpoints.append(KeyServerEndpoint(info.object_id, url, info.public_key, config.weight))
                self._endpoints = endpoints
            return self._endpoints

    async def encrypt(self, data: bytes, owner: str) -> bytes:
        try:
            inner_id = bcs.address(normalize_address(owner))
        except ValueError:
            raise BadInput("owner is not a Sui address") from None
        publics = [
            KeyServerPublic.from_hex(endpoint.object_id, endpoint.public_key)
            for endpoint in await self.endpoints()
            for _ in range(endpoint.weight)
        ]
        package = bcs.address(self._package_id)
        # Pairings take milliseconds: keep them off the event loop.
        return await asyncio.to_thread(
            encrypt, package_id=package, inner_id=inner_id, key_servers=publics, threshold=self._threshold, plaintext=data
        )

    def open_session(self, header: str) -> SessionKey:
        """Parse the client's x-seal-session; refuse a missing, malformed, expired or foreign one."""
        if not header:
            raise InvalidSession("an x-seal-session is required to decrypt")
        try:
            session = SessionKey.from_header(header, clock=self._clock)
        except SessionError as exc:
            raise InvalidSession(f"x-seal-session rejected: {exc}") from None
        if normalize_address(session.package_id) != self._package_id:
            raise InvalidSession("x-seal-session is for another package")
        return session

    async def decrypt(self, ciphertexts: Mapping[str, bytes], *, account_id: str, session: SessionKey) -> dict[str, bytes | None]:
        """Plaintext per key, or None where the ciphertext is corrupt.

        Corrupt means: not a Seal object of this package, or it does not decrypt with keys that were verified
        against the key servers' public keys. One key fetch covers every distinct identity; a refused session or
        account raises for the whole call.
        """
        outcomes: dict[str, bytes | None] = {}
        objects: dict[str, EncryptedObject] = {}
        package = bcs.address(self._package_id)
        for key, raw in ciphertexts.items():
            try:
                obj = EncryptedObject.from_bytes(raw)
            except SealError:
                outcomes[key] = None
                continue
            if obj.package_id != package:
                outcomes[key] = None
                continue
            objects[key] = obj
        if not objects:
            return outcomes
        try:
            account = await self._chain.get_account(account_id)
        except ChainUnavailable as exc:
            raise UpstreamUnavailable(f"chain unavailable: {exc}") from None
        except (ChainError, ValueError):
            account = None
        if account is None:
            raise AccessDenied("the caller's MemWal account does not exist")
        ptb = build_seal_approve_ptb(
            self._package_id, [(obj.inner_id, account.account_id, account.initial_shared_version) for obj in objects.values()]
        )
        client = KeyServerClient(await self.endpoints(), self._threshold, self._http, self._timeout, clock=self._clock)
        try:
            keys = await client.fetch_keys(ptb, session, list({obj.full_id: None for obj in objects.values()}))
        except KeyServerError as exc:
            if exc.permanent:
                raise AccessDenied(f"key servers refused: {exc.kind}") from None
            raise UpstreamUnavailable(f"key servers unavailable: {exc.kind}") from None
        except SessionError as exc:
            raise InvalidSession(f"x-seal-session rejected: {exc}") from None
        names = list(objects)
        # Pairings take milliseconds each: keep them off the event loop.
        decrypted = await asyncio.to_thread(decrypt_objects, [objects[name] for name in names], keys)
        for name, outcome in zip(names, decrypted, strict=True):
            # Keys were verified against the servers' public keys, so a failure means the object is corrupt.
            outcomes[name] = outcome if isinstance(outcome, bytes) else None
        return outcomes
