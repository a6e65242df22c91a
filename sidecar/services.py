"""Build the sidecar's services from its settings; everything opened is closed by the caller's exit stack."""

from __future__ import annotations

import time
from contextlib import AsyncExitStack

import httpx

from chain.backends import make_chain_reader
from chain.consistency import ReadLagPolicy
from memwal_common.redis_client import fail_fast_redis
from memwal_common.stage_timing import StageTimer
from sidecar._keys import WalletPool
from sidecar.app import SidecarServices
from sidecar.blob_opening import BlobOpener
from sidecar.decryption_pool import DecryptionPool
from sidecar.gas_leases import GasLeaseStore
from sidecar.key_cache import SessionKeyCache
from sidecar.seal_service import SealService
from sidecar.settings import SidecarSettings
from sidecar.uploads import UploadJournal, UploadService
from sidecar.walrus import WalrusClient


async def open_sidecar_services(settings: SidecarSettings, stack: AsyncExitStack) -> SidecarServices:
    http = httpx.AsyncClient(
        timeout=settings.http_timeout_seconds, limits=httpx.Limits(max_connections=settings.http_max_connections)
    )
    stack.push_async_callback(http.aclose)
    cache = None
    if settings.redis_url:
        # The cache is optional: when Redis is down, reads fall through to Walrus at once.
        cache = fail_fast_redis(
            settings.redis_url, timeout_seconds=settings.redis_timeout_seconds, cluster=settings.redis_cluster
        )
        stack.push_async_callback(cache.aclose)
    chain = make_chain_reader(settings.sui_url, protocol=settings.sui_protocol, http=http)
    stack.push_async_callback(chain.aclose)
    walrus = WalrusClient(
        http=http,
        publisher_url=settings.walrus_publisher_url,
        aggregator_urls=settings.walrus_aggregator_urls,
        race_after_ms=settings.aggregator_race_after_ms,
        timeout_seconds=settings.walrus_timeout_seconds,
        max_blob_bytes=settings.max_blob_bytes,
        cache=cache,
        cache_ttl_seconds=settings.blob_cache_ttl_seconds,
        cache_max_bytes=settings.blob_cache_max_bytes,
        not_found_retry_seconds=settings.walrus_not_found_retry_seconds,
    )
    decryption = DecryptionPool(settings.seal_decrypt_workers)
    stack.callback(decryption.close)
    decryption.start()
    seal = SealService(
        chain=chain,
        http=http,
        servers=settings.seal_servers,
        threshold=settings.seal_threshold,
        package_id=settings.package_id,
        timeout_seconds=settings.seal_timeout_seconds,
        legacy_decrypt_servers=settings.seal_legacy_decrypt_servers,
        verify_key_servers=settings.seal_verify_key_servers,
        key_cache=SessionKeyCache(settings.seal_key_cache_entries),
        decryption=decryption,
    )
    uploads = UploadService(
        chain=chain,
        walrus=walrus,
        wallets=WalletPool(list(settings.server_keys)),
        walrus_package_id=settings.walrus_package_id,
        gas_budget=settings.gas_budget,
        concurrency=settings.upload_concurrency,
        journal=UploadJournal(cache),
        read_lag=ReadLagPolicy(timeout_seconds=settings.read_lag_timeout_seconds),
        transactions_per_wallet=settings.transactions_per_wallet,
        batch_max_blobs=settings.batch_max_blobs,
        # Instances sharing REDIS_URL share the wallets' gas coins: lease them fleet-wide.
        gas_leases=GasLeaseStore(cache, ttl_seconds=settings.gas_lease_seconds) if cache is not None else None,
        gas_lease_wait_seconds=settings.gas_lease_seconds,
        stage_timer=StageTimer(enabled=settings.stage_timing_logs),
    )
    stack.push_async_callback(uploads.aclose)  # before the Redis client closes (pushed earlier)
    return SidecarServices(
        token=settings.auth_token,
        seal=seal,
        opener=BlobOpener(walrus=walrus, seal=seal),
        uploads=uploads,
        chain=chain,
        walrus_package_id=settings.walrus_package_id,
        max_request_bytes=settings.max_request_bytes,
        started=time.monotonic(),
    )
