"""Everything the relayer's routes and workers use, built once per process from its settings.

``open_services`` registers every pool and client it opens on the caller's exit stack, so closing the stack
stops the job workers first and then closes the clients and pools in reverse order of opening.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import openai

from chain.backends import make_chain_reader
from chain.reader import ChainReader
from memwal_common.redis_client import RedisClient, fail_fast_redis
from memwal_common.stage_timing import StageTimer
from relayer.account_cache import AccountCache
from relayer.auth import Authenticator, RedisNonceStore
from relayer.database.accounts import AccountIndex
from relayer.database.delegate_cache import DelegateKeyCache
from relayer.database.forgetting import ForgetStore
from relayer.database.jobs import JobQueue
from relayer.database.memory_listing import MemoryIndex
from relayer.database.namespaces import NamespaceIndex
from relayer.database.oauth_grants import OAuthGrantStore
from relayer.database.owner_tokens import OwnerTokenStore
from relayer.database.pool import Database, connect
from relayer.database.quota import StorageQuota
from relayer.database.vectors import VectorStore
from relayer.embeddings import Embedder, EmbeddingProvider, LocalEmbeddings, MockEmbeddings, OpenAIEmbeddings
from relayer.expiry_sweep import ExpirySweep, SweepLimits
from relayer.health import HealthMonitor, Probe, ProbeFailed
from relayer.job_runner import JobLimits, JobRunner
from relayer.llm import LanguageModel
from relayer.memory_decryption import ChainBlobLiveness, MemoryReader
from relayer.memory_metadata import MetadataLimits, MetadataPolicy
from relayer.memory_preparation import MemoryPreparer
from relayer.memory_storage import MemoryStorage
from relayer.observability import Metrics
from relayer.owner_access import OwnerReadRoutes
from relayer.rate_limit import RateLimiter
from relayer.revocations import RevocationFollower
from relayer.routes.owner_tokens import TokenIssuance
from relayer.sessions.chain_index import SessionIndex
from relayer.sessions.chains import SessionChains, SessionLimits
from relayer.settings import Settings
from relayer.sidecar_client import SidecarApi
from relayer.signed_routes import BodyLimits, SignedRoutes


@dataclass(frozen=True)
class Services:
    settings: Settings
    metrics: Metrics
    sidecar: SidecarApi
    signed: SignedRoutes  # authenticator + rate limiter in front of every signed route
    limiter: RateLimiter
    embedder: Embedder
    llm: LanguageModel
    vectors: VectorStore
    jobs: JobQueue
    namespaces: NamespaceIndex
    preparer: MemoryPreparer
    reader: MemoryReader
    storage: MemoryStorage
    job_runner: JobRunner
    health: HealthMonitor
    chain: ChainReader
    memories: MemoryIndex
    owner_reads: OwnerReadRoutes  # token-or-signature auth and the read budget of /v1/owners/{owner}/…
    token_issuance: TokenIssuance
    sessions: SessionChains
    oauth_grants: OAuthGrantStore  # MCP's OAuth clients, authorizations and tokens (relayer/mcp/oauth.py)
    metadata: MetadataPolicy  # tag and TTL limits (extensions beyond upstream)
    forgetting: ForgetStore
    expiry_sweep: ExpirySweep  # started with the job workers (relayer/serve.py)


def utc_now() -> datetime:
    return datetime.now(UTC)


async def connect_database(url: str, settings: Settings, *, pool_size: int, migrate: bool = True) -> Database:
    return await connect(
        url,
        max_size=pool_size,
        command_timeout=settings.database_command_timeout_seconds,
        connect_timeout=settings.database_connect_timeout_seconds,
        migrate=migrate,
    )


async def embedding_provider(settings: Settings, openai_client: openai.AsyncOpenAI | None) -> EmbeddingProvider:
    """EMBEDDING_PROVIDER's embeddings; the local model is loaded (once per process) in a worker thread."""
    if settings.embedding_provider == "local":
        # Imported here: numpy, tokenizers and 87 MiB of weights only in processes that run the model.
        from relayer.local_embeddings import load_local_model

        return LocalEmbeddings(await asyncio.to_thread(load_local_model))
    if openai_client is None:
        return MockEmbeddings(cache_scope=f"{settings.openai_api_base}\x00{settings.embedding_model}")
    return OpenAIEmbeddings(openai_client, model=settings.embedding_model, api_base=settings.openai_api_base)


async def open_services(
    settings: Settings, *, sidecar: SidecarApi, stack: AsyncExitStack, database: Database | None = None,
    cache: RedisClient | None = None, clock: Callable[[], datetime] = utc_now,
) -> Services:
    """Open pools and clients for ``settings`` (DATABASE_URL and REDIS_URL must be set) around ``sidecar``.

    ``database`` and ``cache`` replace the ones the settings name (tests point them at stopped servers);
    ``clock`` is what memory TTLs and tombstones are measured against.
    """
    if database is None:
        if settings.database_url is None:
            raise ValueError("DATABASE_URL is required")
        database = await connect_database(settings.database_url, settings, pool_size=max(4, settings.job_concurrency + 4))
        stack.push_async_callback(database.close)
    if cache is None:
        if settings.redis_url is None:
            raise ValueError("REDIS_URL is required")
        cache = fail_fast_redis(
            settings.redis_url, timeout_seconds=settings.redis_timeout_seconds, cluster=settings.redis_cluster
        )
        stack.push_async_callback(cache.aclose)
    http = httpx.AsyncClient(
        timeout=httpx.Timeout(settings.sui_timeout_seconds),
        limits=httpx.Limits(max_connections=settings.http_max_connections),
    )
    stack.push_async_callback(http.aclose)
    chain = make_chain_reader(settings.sui.url, protocol=settings.sui.protocol, http=http)
    stack.push_async_callback(chain.aclose)
    openai_client = None
    if settings.openai_api_key:
        openai_client = openai.AsyncOpenAI(
            api_key=settings.openai_api_key.reveal(),
            base_url=settings.openai_api_base,
            timeout=settings.upstream_timeout_seconds,
            max_retries=1,
        )
        stack.push_async_callback(openai_client.close)
    metrics = Metrics()
    reads = None
    if settings.database_read_url:
        # Recall's search only: owner-scoped, and allowed to trail the primary by the replica's lag.
        reads = await connect_database(settings.database_read_url, settings, pool_size=max(4, settings.job_concurrency), migrate=False)
        stack.push_async_callback(reads.close)
    vectors = VectorStore(database, reads=reads, clock=clock, tuning=None)  # aimed at the index found on first search
    jobs = JobQueue(database)
    forgetting = ForgetStore(database, clock=clock)
    expiry_sweep = ExpirySweep(forgetting, SweepLimits(
        settings.expiry_sweep_interval_seconds, settings.expiry_sweep_batch, settings.forget_tombstone_retention_seconds))
    stack.push_async_callback(expiry_sweep.stop)

    def budget(per_minute: int, per_hour: int, key_per_minute: int, *, key_prefix: str = "") -> RateLimiter:
        return RateLimiter(
            cache, per_minute=per_minute, per_hour=per_hour, delegate_per_minute=key_per_minute,
            disabled=settings.rate_limit_disabled, key_prefix=key_prefix,
            on_fallback=lambda scope: metrics.rate_limit_fallbacks.labels(scope).inc(),
        )

    limiter = budget(settings.rate_limit_per_minute, settings.rate_limit_per_hour, settings.rate_limit_delegate_per_minute)
    accounts = AccountCache(
        ttl_seconds=settings.auth_account_cache_ttl_seconds, max_entries=settings.auth_account_cache_max_entries
    )
    revocations = RevocationFollower(
        chain, settings.package_id, accounts, poll_seconds=settings.auth_revocation_poll_seconds,
        on_failure=lambda: metrics.revocation_poll_failures.inc(),
    )
    revocations.start()
    stack.push_async_callback(revocations.stop)
    nonces = RedisNonceStore(cache)
    await nonces.start_epoch(time.time())
    authenticator = Authenticator(
        chain=chain,
        nonces=nonces,
        cache=DelegateKeyCache(database),
        registry_id=settings.registry_id,
        default_account_id=settings.default_account_id,
        clock_drift_seconds=settings.clock_drift_seconds,
        cache_hours=settings.account_cache_hours,
        accounts=accounts,
        limiter=limiter,
    )
    embedder = Embedder(
        await embedding_provider(settings, openai_client), cache=cache, cache_ttl_seconds=settings.embedding_cache_ttl_seconds
    )
    llm = LanguageModel(openai_client, settings.llm_model, policy=settings.plaintext_policy)
    storage = MemoryStorage(
        quota=StorageQuota(database, limit_bytes=settings.storage_quota_bytes),
        sidecar=sidecar,
        vectors=vectors,
        package_id=settings.package_id,
        storage_epochs=settings.walrus_storage_epochs,
    )
    stage_timer = StageTimer(enabled=settings.stage_timing_logs)
    job_runner = JobRunner(
        jobs=jobs,
        storage=storage,
        metrics=metrics,
        limits=JobLimits(settings.job_concurrency, settings.job_lease_seconds, settings.job_max_attempts),
        stage_timer=stage_timer,
    )
    stack.push_async_callback(job_runner.stop)
    health = HealthMonitor(
        _probes(database, cache, sidecar, chain, settings.registry_id),
        workers_running=lambda: job_runner.running,
        interval_seconds=settings.health_interval_seconds,
        timeout_seconds=settings.health_probe_timeout_seconds,
    )
    await health.refresh()
    health.start()
    stack.push_async_callback(health.stop)
    body_limits = BodyLimits(
        settings.max_body_bytes, settings.body_read_timeout_seconds, settings.min_body_bytes_per_second,
        drain_bytes=settings.body_drain_bytes,
    )
    owner_tokens = OwnerTokenStore(database)
    read_limiter = budget(settings.owner_read_per_minute, settings.owner_read_per_hour, settings.owner_read_key_per_minute,
                          key_prefix="read:")
    issuance_limiter = budget(settings.owner_token_owner_per_minute, settings.owner_token_owner_per_hour,
                              settings.owner_token_per_minute, key_prefix="token:")
    return Services(
        settings=settings,
        metrics=metrics,
        sidecar=sidecar,
        signed=SignedRoutes(authenticator, metrics, body_limits, stage_timer),
        limiter=limiter,
        embedder=embedder,
        llm=llm,
        vectors=vectors,
        jobs=jobs,
        namespaces=NamespaceIndex(database),
        preparer=MemoryPreparer(llm=llm, embedder=embedder, sidecar=sidecar, package_id=settings.package_id,
                                stage_timer=stage_timer),
        reader=MemoryReader(
            vectors=vectors, sidecar=sidecar, package_id=settings.package_id,
            liveness=ChainBlobLiveness(chain, settings.walrus_package_id),
            on_miss=lambda action: metrics.blob_misses.labels(action).inc(),
        ),
        storage=storage,
        job_runner=job_runner,
        health=health,
        chain=chain,
        memories=MemoryIndex(database, clock=clock),
        owner_reads=OwnerReadRoutes(authenticator, owner_tokens, read_limiter, metrics, body_limits),
        token_issuance=TokenIssuance(
            tokens=owner_tokens, accounts=AccountIndex(database), limiter=issuance_limiter, metrics=metrics,
            body_limits=body_limits, service_credential=settings.owner_token_service_credential,
            ttl=timedelta(seconds=settings.owner_token_ttl_seconds),
        ),
        sessions=SessionChains(
            sidecar=sidecar, cache=cache, package_id=settings.package_id,
            index=SessionIndex(chain, walrus_package_id=settings.walrus_package_id, package_id=settings.package_id,
                               cache_claims=settings.session_index_cache_claims),
            limits=SessionLimits(settings.session_lock_seconds, settings.session_lock_wait_seconds,
                                 settings.walrus_storage_epochs),
        ),
        oauth_grants=OAuthGrantStore(database),
        metadata=MetadataPolicy(
            MetadataLimits(settings.memory_max_tags, settings.memory_max_tag_bytes, settings.memory_min_ttl_seconds,
                           settings.memory_max_ttl_seconds),
            clock=clock,
        ),
        forgetting=forgetting,
        expiry_sweep=expiry_sweep,
    )


def _probes(database: Database, cache: RedisClient, sidecar: SidecarApi, chain: ChainReader, registry_id: str) -> dict[str, Probe]:
    async def postgres() -> None:
        async with database.connection() as connection:
            await connection.fetchval("SELECT 1")

    async def redis() -> None:
        await cache.ping()

    async def sidecar_health() -> None:
        if await sidecar.health() is None:
            raise ProbeFailed("sidecar not healthy")

    async def sui() -> None:
        await chain.object_version(registry_id)

    return {"database": postgres, "redis": redis, "sidecar": sidecar_health, "chain": sui}
