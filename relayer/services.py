"""Everything a request handler needs, built once per process and closed in order on shutdown."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai
import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from chain.backends import make_chain_reader
from chain.reader import ChainReader
from memwal_common.secret import Secret
from relayer.auth import Authenticator, RedisNonceStore
from relayer.database.delegate_cache import DelegateKeyCache
from relayer.database.jobs import JobQueue
from relayer.database.namespaces import list_namespaces
from relayer.database.pool import Database, connect
from relayer.database.quota import check_storage_quota
from relayer.database.vectors import VectorStore
from relayer.embeddings import Embedder
from relayer.llm import LanguageModel
from relayer.observability import Metrics
from relayer.rate_limit import RateLimiter
from relayer.settings import Settings
from relayer.sidecar_client import SidecarClient

logger = logging.getLogger("memwal.services")

REDIS_TIMEOUT_SECONDS = 2.0


class StorageQuota:
    """``check(owner, new_bytes, limit)`` raises QuotaExceeded when the owner would exceed the limit."""

    def __init__(self, database: Database) -> None:
        self._database = database

    async def check(self, owner: str, new_bytes: int, limit_bytes: int) -> None:
        await check_storage_quota(self._database, owner, new_bytes, limit_bytes)


class NamespaceIndex:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def list_namespaces(self, owner: str, cursor: str | None, limit: int) -> dict:
        return (await list_namespaces(self._database, owner, cursor, limit)).to_json()


@dataclass
class Services:
    settings: Settings
    metrics: Metrics
    database: Database
    redis: Any
    http: httpx.AsyncClient
    chain: ChainReader
    vectors: VectorStore
    jobs: JobQueue
    quota: StorageQuota
    namespaces: NamespaceIndex
    authenticator: Authenticator
    limiter: RateLimiter
    embedder: Embedder
    llm: LanguageModel
    sidecar: SidecarClient
    job_runner: Any = None
    _closers: list = field(default_factory=list)

    def jobs_running(self) -> bool:
        return self.job_runner is not None and self.job_runner.running

    async def close(self) -> None:
        if self.job_runner is not None:
            await self.job_runner.stop()
        for close in reversed(self._closers):
            try:
                await close()
            except Exception as exc:  # noqa: BLE001 -- keep closing the rest
                logger.warning("close failed: %s", type(exc).__name__)


async def create_services(settings: Settings, *, database_url: str, redis_url: str, sidecar_socket: str, sidecar_token: Secret) -> Services:
    metrics = Metrics()
    closers: list = []
    database = await connect(database_url, max_size=max(4, settings.job_concurrency + 4))
    closers.append(database.close)
    # Fail fast when Redis is down: auth rejects and the limiter falls back at once instead of
    # retrying with backoff for seconds on every request.
    cache = redis.Redis.from_url(
        redis_url, retry=Retry(NoBackoff(), 1), socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
    )
    closers.append(cache.aclose)
    http = httpx.AsyncClient(timeout=httpx.Timeout(15.0), limits=httpx.Limits(max_connections=64))
    closers.append(http.aclose)
    chain_url = settings.sui_graphql_url if settings.sui_protocol == "graphql" else settings.sui_rpc_url
    chain = make_chain_reader(chain_url, protocol=settings.sui_protocol, http=http)
    openai_client = None
    if settings.openai_api_key:
        openai_client = openai.AsyncOpenAI(
            api_key=settings.openai_api_key.reveal(),
            base_url=settings.openai_api_base,
            timeout=settings.upstream_timeout_seconds,
            max_retries=1,
        )
        closers.append(openai_client.close)
    sidecar = SidecarClient(sidecar_socket, sidecar_token)
    closers.append(sidecar.close)
    vectors = VectorStore(database)
    services = Services(
        settings=settings,
        metrics=metrics,
        database=database,
        redis=cache,
        http=http,
        chain=chain,
        vectors=vectors,
        jobs=JobQueue(database),
        quota=StorageQuota(database),
        namespaces=NamespaceIndex(database),
        authenticator=Authenticator(
            chain=chain,
            nonces=RedisNonceStore(cache),
            cache=DelegateKeyCache(database),
            registry_id=settings.registry_id,
            default_account_id=settings.default_account_id,
            clock_drift_seconds=settings.clock_drift_seconds,
            cache_hours=settings.account_cache_hours,
        ),
        limiter=RateLimiter(
            cache,
            per_minute=settings.rate_limit_per_minute,
            per_hour=settings.rate_limit_per_hour,
            delegate_per_minute=settings.rate_limit_delegate_per_minute,
            disabled=settings.rate_limit_disabled,
            on_fallback=lambda scope: metrics.rate_limit_fallbacks.labels(scope).inc(),
        ),
        embedder=Embedder(
            client=openai_client,
            model=settings.embedding_model,
            api_base=settings.openai_api_base,
            cache=cache,
            cache_ttl_seconds=settings.embedding_cache_ttl_seconds,
        ),
        llm=LanguageModel(openai_client, settings.llm_model),
        sidecar=sidecar,
        _closers=closers,
    )
    return services
