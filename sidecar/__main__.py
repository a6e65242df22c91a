"""``python -m sidecar``: serve the sidecar API on SIDECAR_SOCKET until SIGINT/SIGTERM.

Configuration comes only from the environment (see sidecar/settings.py and README). The socket file is
created with mode 0600 so only the relayer's user can connect.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time

import httpx
from hypercorn.asyncio import serve
from hypercorn.config import Config

from chain.backends import make_chain_reader
from memwal_common.environment import SettingsError
from memwal_common.signals import shutdown_on_signals
from sidecar._keys import WalletPool
from sidecar.app import SidecarServices, build_app
from sidecar.seal_service import SealService
from sidecar.settings import SidecarSettings
from sidecar.uploads import UploadService
from sidecar.walrus import WalrusClient


async def run(settings: SidecarSettings, shutdown: asyncio.Event) -> None:
    http = httpx.AsyncClient(timeout=30.0, limits=httpx.Limits(max_connections=64))
    cache = None
    if settings.redis_url:
        import redis.asyncio as redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        # The cache is optional: fail fast and fall through to Walrus rather than retrying.
        cache = redis.Redis.from_url(settings.redis_url, retry=Retry(NoBackoff(), 1), socket_connect_timeout=2.0, socket_timeout=2.0)
    chain = make_chain_reader(settings.sui_url, protocol=settings.sui_protocol, http=http)
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
    )
    services = SidecarServices(
        token=settings.auth_token,
        seal=SealService(
            chain=chain,
            http=http,
            servers=settings.seal_servers,
            threshold=settings.seal_threshold,
            package_id=settings.package_id,
            timeout_seconds=settings.seal_timeout_seconds,
        ),
        walrus=walrus,
        uploads=UploadService(
            chain=chain,
            walrus=walrus,
            wallets=WalletPool(list(settings.server_keys)),
            walrus_package_id=settings.walrus_package_id,
            gas_budget=settings.gas_budget,
            concurrency=settings.upload_concurrency,
        ),
        chain=chain,
        walrus_package_id=settings.walrus_package_id,
        started=time.monotonic(),
    )
    config = Config()
    config.bind = [f"unix:{settings.socket_path}"]
    config.accesslog = None
    config.graceful_timeout = 10
    old_umask = os.umask(0o177)  # the socket file is created 0600
    try:
        await serve(build_app(services), config, shutdown_trigger=shutdown.wait)
    finally:
        os.umask(old_umask)
        await http.aclose()
        if cache is not None:
            await cache.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sidecar",
        description="MemWal sidecar: the only key holder. Serves Seal, Walrus and Sui operations to the relayer "
        "over a Unix socket. All configuration comes from the environment (see README).",
    )
    parser.parse_args(argv)
    try:
        settings = SidecarSettings.from_environ()
    except SettingsError as exc:
        print(f"sidecar: {exc}", file=sys.stderr)
        return 2
    # Keys now live in `settings` only; drop them from the environment of anything we might spawn.
    for name in ("SERVER_SUI_PRIVATE_KEYS", "SERVER_SUI_PRIVATE_KEY", "SIDECAR_AUTH_TOKEN"):
        os.environ.pop(name, None)
    from memwal_common.logs import configure_logging

    configure_logging(os.environ.get("LOG_FORMAT", "pretty"))

    async def main_async() -> None:
        shutdown = shutdown_on_signals()
        await run(settings, shutdown)

    asyncio.run(main_async())
    return 0


if __name__ == "__main__":
    sys.exit(main())
