"""Seal through the key servers listed on chain: encrypt for an owner, decrypt with the client's session.

Key servers (``SEAL_SERVER_CONFIGS``) are read from their on-chain ``KeyServer`` objects once and cached:
``KeyServerV2`` when present, else ``KeyServerV1``. An independent server is called at its on-chain URL
(``aggregatorUrl`` overrides it) and must prove it holds the on-chain key (``/v1/service`` proof of
possession) before anything is encrypted to it. A committee (``KeyServerV2`` ``Committee``) is one
logical server behind its aggregator: its ``aggregatorUrl`` is required, and its on-chain key must agree
with its members' partial keys. Every user key fetched is checked against the on-chain key.

Encryption uses the configured servers and ``SEAL_THRESHOLD``. Decryption uses whatever each ciphertext
names, with the threshold the ciphertext carries, from the configured servers plus the decrypt-only
``SEAL_LEGACY_DECRYPT_KEY_SERVERS``: memories encrypted under an old pair stay readable after a switch.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping

import httpx

from chain import bcs
from chain.address import normalize_address
from chain.errors import ChainError, ChainUnavailable
from chain.reader import Account, ChainReader, CommitteeServer, KeyServerInfo
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
)
from sealcrypto.committee import verify_committee_public_key
from sealcrypto.keyserver_client import verify_possession
from sidecar.decryption_pool import DecryptionPool
from sidecar.errors import AccessDenied, BadInput, InvalidSession, UpstreamUnavailable
from sidecar.key_cache import CacheKey, SessionKeyCache, session_fingerprint

logger = logging.getLogger("memwal.sidecar.seal")
KEY_TYPE_BF_BLS12381 = 0


class KeyServerMisconfigured(UpstreamUnavailable):
    """A configured key server cannot be used as configured (kept apart so logs say so plainly)."""


class Undecryptable(enum.Enum):
    """Why a ciphertext gave no plaintext. Only CORRUPT is a property of the blob itself: a blob whose key
    servers are not configured here (a key-server switch without SEAL_LEGACY_DECRYPT_KEY_SERVERS, or a
    misconfigured deployment) is intact and must never be treated as garbage."""

    CORRUPT = "corrupt"  # not a Seal object of this package, or it fails to decrypt with verified keys
    UNKNOWN_KEY_SERVERS = "unknown_key_servers"  # names key servers this deployment does not know


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
        legacy_decrypt_servers: tuple[SealServerConfig, ...] = (),
        verify_key_servers: bool = True,
        clock: Callable[[], float] = time.time,
        key_cache: SessionKeyCache | None = None,
        decryption: DecryptionPool | None = None,
    ) -> None:
        self._chain = chain
        self._http = http
        self._configs = {normalize_address(config.object_id): config for config in servers}
        self._legacy = {normalize_address(config.object_id): config for config in legacy_decrypt_servers}
        self._threshold = threshold
        self._package_id = normalize_address(package_id)
        self._timeout = timeout_seconds
        self._verify = verify_key_servers
        self._clock = clock
        self._key_cache = key_cache if key_cache is not None else SessionKeyCache(0, clock=clock)
        self._decryption = decryption if decryption is not None else DecryptionPool(0)
        self._endpoints: dict[str, KeyServerEndpoint] = {}
        self._committee_ids: set[str] = set()  # checked against their members' keys; no /v1/service to ask
        self._possession_proven: set[str] = set()
        self._lock = asyncio.Lock()

    def check_package(self, package_id: str) -> None:
        try:
            if normalize_address(package_id) != self._package_id:
                raise BadInput("packageId is not the package this relayer serves")
        except ValueError:
            raise BadInput("packageId is not a Sui object id") from None

    async def endpoint(self, object_id: str) -> KeyServerEndpoint | None:
        """The usable endpoint of a configured (or decrypt-only) key server; None for one we do not know."""
        object_id = normalize_address(object_id)
        config = self._configs.get(object_id) or self._legacy.get(object_id)
        if config is None:
            return None
        async with self._lock:
            if object_id not in self._endpoints:
                info = await self._key_server(object_id)
                self._endpoints[object_id] = _endpoint(config, info)
                if isinstance(info.server_type, CommitteeServer):
                    self._committee_ids.add(object_id)
            return self._endpoints[object_id]

    async def _key_server(self, object_id: str) -> KeyServerInfo:
        try:
            return await self._chain.key_server(object_id)
        except ChainUnavailable as exc:
            raise UpstreamUnavailable(f"cannot read key server {object_id}: {exc}") from None
        except ChainError as exc:
            raise KeyServerMisconfigured(f"key server {object_id} is not usable: {exc}") from None

    async def verify_server(self, object_id: str) -> KeyServerInfo:
        """Every check a configured or decrypt-only server must pass, now and whatever SEAL_VERIFY_KEY_SERVERS
        says (``python -m sidecar check``): its on-chain record; an independent server's proof of possession;
        a committee's key consistency and an answer from its aggregator. Raises ``KeyServerMisconfigured``
        (or ``UpstreamUnavailable`` when it cannot be asked)."""
        object_id = normalize_address(object_id)
        config = self._configs.get(object_id) or self._legacy.get(object_id)
        if config is None:
            raise KeyServerMisconfigured(f"key server {object_id} is not configured")
        info = await self._key_server(object_id)
        endpoint = _endpoint(config, info)
        if isinstance(info.server_type, CommitteeServer):
            try:  # the aggregator has no proof of possession to give (/v1/service), only an answer
                await self._http.get(endpoint.url.rstrip("/") + "/v1/service", timeout=self._timeout)
            except httpx.HTTPError:
                raise UpstreamUnavailable(f"committee aggregator {endpoint.url} unreachable") from None
            return info
        await self._require_possession(endpoint)
        return info

    async def endpoints(self) -> list[KeyServerEndpoint]:
        """The configured servers encryption uses, in configuration order."""
        found = [await self.endpoint(object_id) for object_id in self._configs]
        return [endpoint for endpoint in found if endpoint is not None]

    async def _prove_possession(self, endpoints: list[KeyServerEndpoint]) -> None:
        """Before encrypting to independent servers, each must prove it holds the on-chain key (once)."""
        if not self._verify:
            return
        for endpoint in endpoints:
            if endpoint.object_id in self._possession_proven or endpoint.object_id in self._committee_ids:
                continue
            await self._require_possession(endpoint)
            self._possession_proven.add(endpoint.object_id)

    async def _require_possession(self, endpoint: KeyServerEndpoint) -> None:
        try:
            proven = await verify_possession(self._http, endpoint, self._timeout)
        except KeyServerError as exc:
            raise UpstreamUnavailable(f"key server {endpoint.object_id} unreachable: {exc.kind}") from None
        if not proven:
            raise KeyServerMisconfigured(f"key server {endpoint.object_id} does not prove it holds its on-chain key")

    async def encrypt(self, data: bytes, owner: str) -> bytes:
        try:
            inner_id = bcs.address(normalize_address(owner))
        except ValueError:
            raise BadInput("owner is not a Sui address") from None
        endpoints = await self.endpoints()
        await self._prove_possession(endpoints)
        publics = [
            KeyServerPublic.from_hex(endpoint.object_id, endpoint.public_key)
            for endpoint in endpoints
            for _ in range(endpoint.weight)
        ]
        package = bcs.address(self._package_id)
        # Pairings take milliseconds: keep them off the event loop, on a worker process when there are some.
        return await self._decryption.encrypt(package_id=package, inner_id=inner_id, key_servers=publics,
                                              threshold=self._threshold, plaintext=data)

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

    async def decrypt(
        self, ciphertexts: Mapping[str, bytes], *, account_id: str, session: SessionKey
    ) -> dict[str, bytes | Undecryptable]:
        """Plaintext per key, or why there is none (``Undecryptable``).

        Corrupt means: not a Seal object of this package, or it does not decrypt with keys that were verified
        against the key servers' public keys. Objects are grouped by the key servers and threshold they name,
        one key fetch per group unless this session already holds the keys (``SessionKeyCache``); a refused
        session or account raises for the whole call. Decryptions run on the ``DecryptionPool``.
        """
        outcomes: dict[str, bytes | Undecryptable] = {}
        objects: dict[str, EncryptedObject] = {}
        package = bcs.address(self._package_id)
        for key, raw in ciphertexts.items():
            try:
                obj = EncryptedObject.from_bytes(raw)
            except SealError:
                outcomes[key] = Undecryptable.CORRUPT
                continue
            if obj.package_id != package:
                outcomes[key] = Undecryptable.CORRUPT
                continue
            objects[key] = obj
        if not objects:
            return outcomes
        groups: dict[tuple[tuple[KeyServerEndpoint, ...], int], list[str]] = {}
        for key, obj in objects.items():
            group = await self._servers_for(obj)
            if group is None:
                outcomes[key] = Undecryptable.UNKNOWN_KEY_SERVERS
                continue
            groups.setdefault(group, []).append(key)
        if not groups:
            return outcomes
        fingerprint = session_fingerprint(session)
        for (servers, threshold), keys in groups.items():
            members = [objects[key] for key in keys]
            released = await self._user_keys(servers, threshold, members, session, fingerprint, account_id)
            decrypted = await self._decryption.decrypt(members, released)
            for key, outcome in zip(keys, decrypted, strict=True):
                # Keys were verified against the servers' public keys, so a failure means the object is corrupt.
                outcomes[key] = outcome if isinstance(outcome, bytes) else Undecryptable.CORRUPT
        return outcomes

    async def _user_keys(
        self, servers: tuple[KeyServerEndpoint, ...], threshold: int, members: list[EncryptedObject],
        session: SessionKey, fingerprint: bytes, account_id: str,
    ) -> dict[bytes, dict[bytes, bytes]]:
        """``{key-server object id: {full id: user key}}`` for ``members``: from the session's cache where the
        key servers already released them to this session and account, else in one key-server round trip."""
        try:
            account_key = normalize_address(account_id)
        except ValueError:
            raise AccessDenied("the caller's MemWal account does not exist") from None
        server_group = tuple((server.object_id, server.weight) for server in servers)
        known: dict[bytes, dict[bytes, bytes]] = {}  # full id -> key-server object id -> user key
        for full_id in dict.fromkeys(obj.full_id for obj in members):
            cached = self._key_cache.get(CacheKey(fingerprint, account_key, full_id, server_group, threshold))
            if cached is not None:
                known[full_id] = cached
        missing = [obj for obj in members if obj.full_id not in known]
        if missing:
            account = await self._account(account_id)
            fetched = await self._fetch_keys(list(servers), threshold, session, account, missing)
            for full_id in dict.fromkeys(obj.full_id for obj in missing):
                known[full_id] = {server: per_id[full_id] for server, per_id in fetched.items() if full_id in per_id}
                self._key_cache.put(CacheKey(fingerprint, account_key, full_id, server_group, threshold),
                                    known[full_id], expires_at_ms=session.expires_at_ms)
        by_server: dict[bytes, dict[bytes, bytes]] = {}
        for full_id, per_server in known.items():
            for server, usk in per_server.items():
                by_server.setdefault(server, {})[full_id] = usk
        return by_server

    async def _account(self, account_id: str) -> Account:
        try:
            account = await self._chain.get_account(account_id)
        except ChainUnavailable as exc:
            raise UpstreamUnavailable(f"chain unavailable: {exc}") from None
        except (ChainError, ValueError):
            account = None
        if account is None:
            raise AccessDenied("the caller's MemWal account does not exist")
        return account

    async def _fetch_keys(
        self, servers: list[KeyServerEndpoint], threshold: int, session: SessionKey, account: Account,
        members: list[EncryptedObject],
    ) -> dict[bytes, dict[bytes, bytes]]:
        """One key-server round trip for ``members``: ``{key-server object id: {full id: user key}}``."""
        ptb = build_seal_approve_ptb(
            self._package_id, [(obj.inner_id, account.account_id, account.initial_shared_version) for obj in members]
        )
        client = KeyServerClient(servers, threshold, self._http, self._timeout, clock=self._clock)
        try:
            return await client.fetch_keys(ptb, session, list({obj.full_id: None for obj in members}))
        except KeyServerError as exc:
            if exc.permanent:
                raise AccessDenied(f"key servers refused: {exc.kind}") from None
            raise UpstreamUnavailable(f"key servers unavailable: {exc.kind}") from None
        except SessionError as exc:
            raise InvalidSession(f"x-seal-session rejected: {exc}") from None

    async def _servers_for(self, obj: EncryptedObject) -> tuple[tuple[KeyServerEndpoint, ...], int] | None:
        """The known servers an object names, each weighted by its share slots, and the object's threshold."""
        slots = Counter("0x" + slot.object_id.hex() for slot in obj.services)
        servers = []
        for object_id, weight in slots.items():
            endpoint = await self.endpoint(object_id)
            if endpoint is not None:
                servers.append(KeyServerEndpoint(endpoint.object_id, endpoint.url, endpoint.public_key, weight))
        if sum(server.weight for server in servers) < obj.threshold:
            unknown = sorted(set(slots) - {server.object_id for server in servers})
            logger.warning("a ciphertext needs key servers that are not configured: %s", ", ".join(unknown))
            return None
        return tuple(servers), obj.threshold


def _endpoint(config: SealServerConfig, info: KeyServerInfo) -> KeyServerEndpoint:
    if info.key_type != KEY_TYPE_BF_BLS12381:
        raise KeyServerMisconfigured(f"key server {info.object_id} uses key type {info.key_type}, not BF-IBE/BLS12-381")
    if isinstance(info.server_type, CommitteeServer):
        committee = info.server_type
        if not config.aggregator_url:
            raise KeyServerMisconfigured(f"key server {info.object_id} is a committee: SEAL_SERVER_CONFIGS needs its aggregatorUrl")
        partial_keys = [member.partial_public_key for member in committee.members]
        if not verify_committee_public_key(info.public_key, committee.threshold, partial_keys):
            raise KeyServerMisconfigured(f"committee {info.object_id}: its key does not match its members' keys")
        return KeyServerEndpoint(info.object_id, config.aggregator_url, info.public_key, config.weight)
    url = config.aggregator_url or info.url
    if not url:
        raise KeyServerMisconfigured(f"key server {info.object_id} has no URL")
    return KeyServerEndpoint(info.object_id, url, info.public_key, config.weight)
