"""Sidecar settings, read once from its own environment (the relayer starts it with that environment)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from memwal_common.environment import SealServerConfig, SettingsError, env_int, parse_csv, parse_seal_servers
from memwal_common.secret import Secret


@dataclass(frozen=True)
class SidecarSettings:
    socket_path: str  # SIDECAR_SOCKET (required)
    auth_token: Secret  # SIDECAR_AUTH_TOKEN (required)
    server_keys: tuple[str, ...]  # SERVER_SUI_PRIVATE_KEYS (CSV) or SERVER_SUI_PRIVATE_KEY
    package_id: str  # MEMWAL_PACKAGE_ID
    sui_url: str  # SUI_RPC_URL or SUI_GRAPHQL_URL per SUI_PROTOCOL
    sui_protocol: str  # SUI_PROTOCOL
    walrus_publisher_url: str  # WALRUS_PUBLISHER_URL
    walrus_aggregator_urls: tuple[str, ...]  # WALRUS_AGGREGATOR_URLS / WALRUS_AGGREGATOR_URL
    walrus_package_id: str  # WALRUS_PACKAGE_ID
    aggregator_race_after_ms: int  # WALRUS_AGGREGATOR_RACE_AFTER_MS [150]
    walrus_timeout_seconds: float  # WALRUS_TIMEOUT_SECS [15]
    max_blob_bytes: int  # WALRUS_MAX_BLOB_BYTES [2 MiB]
    upload_concurrency: int  # WALRUS_UPLOAD_CONCURRENCY [4]
    seal_servers: tuple[SealServerConfig, ...]  # SEAL_SERVER_CONFIGS
    seal_threshold: int  # SEAL_THRESHOLD [min(2, total weight)]
    seal_timeout_seconds: float  # SEAL_KEY_SERVER_TIMEOUT_MS [25000]
    redis_url: str | None  # REDIS_URL: blob cache; unset = no cache
    blob_cache_ttl_seconds: int  # BLOB_CACHE_TTL_SECS
    blob_cache_max_bytes: int  # BLOB_CACHE_MAX_BYTES
    gas_budget: int  # SUI_GAS_BUDGET [50_000_000]

    @classmethod
    def from_environ(cls, env: Mapping[str, str] = os.environ) -> "SidecarSettings":
        protocol = env.get("SUI_PROTOCOL", "jsonrpc")
        sui_url = env.get("SUI_GRAPHQL_URL", "") if protocol == "graphql" else env.get("SUI_RPC_URL", "")
        keys = parse_csv(env.get("SERVER_SUI_PRIVATE_KEYS")) or parse_csv(env.get("SERVER_SUI_PRIVATE_KEY"))
        seal_servers = parse_seal_servers(env.get("SEAL_SERVER_CONFIGS", ""))
        threshold = env_int(env, "SEAL_THRESHOLD", 0, minimum=0) or min(2, sum(s.weight for s in seal_servers))
        settings = cls(
            socket_path=env.get("SIDECAR_SOCKET", ""),
            auth_token=Secret(env.get("SIDECAR_AUTH_TOKEN", "")),
            server_keys=keys,
            package_id=env.get("MEMWAL_PACKAGE_ID", ""),
            sui_url=sui_url,
            sui_protocol=protocol,
            walrus_publisher_url=env.get("WALRUS_PUBLISHER_URL", "").rstrip("/"),
            walrus_aggregator_urls=tuple(
                u.rstrip("/") for u in (parse_csv(env.get("WALRUS_AGGREGATOR_URLS")) or parse_csv(env.get("WALRUS_AGGREGATOR_URL")))
            ),
            walrus_package_id=env.get("WALRUS_PACKAGE_ID", ""),
            aggregator_race_after_ms=env_int(env, "WALRUS_AGGREGATOR_RACE_AFTER_MS", 150, minimum=0),
            walrus_timeout_seconds=float(env_int(env, "WALRUS_TIMEOUT_SECS", 15, minimum=1)),
            max_blob_bytes=env_int(env, "WALRUS_MAX_BLOB_BYTES", 2 * 1024 * 1024, minimum=1024),
            upload_concurrency=env_int(env, "WALRUS_UPLOAD_CONCURRENCY", 4, minimum=1),
            seal_servers=seal_servers,
            seal_threshold=threshold,
            seal_timeout_seconds=env_int(env, "SEAL_KEY_SERVER_TIMEOUT_MS", 25_000, minimum=100) / 1000.0,
            redis_url=env.get("REDIS_URL") or None,
            blob_cache_ttl_seconds=env_int(env, "BLOB_CACHE_TTL_SECS", 1_209_600, minimum=0),
            blob_cache_max_bytes=env_int(env, "BLOB_CACHE_MAX_BYTES", 524_288, minimum=0),
            gas_budget=env_int(env, "SUI_GAS_BUDGET", 50_000_000, minimum=1),
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        required = {
            "SIDECAR_SOCKET": self.socket_path,
            "SIDECAR_AUTH_TOKEN": self.auth_token.reveal(),
            "MEMWAL_PACKAGE_ID": self.package_id,
            "SUI_RPC_URL / SUI_GRAPHQL_URL": self.sui_url,
            "WALRUS_PUBLISHER_URL": self.walrus_publisher_url,
            "WALRUS_PACKAGE_ID": self.walrus_package_id,
        }
        for name, value in required.items():
            if not value:
                raise SettingsError(f"{name} is required by the sidecar")
        if len(self.auth_token.reveal()) < 32:
            raise SettingsError("SIDECAR_AUTH_TOKEN must be at least 32 characters")
        if not self.server_keys:
            raise SettingsError("SERVER_SUI_PRIVATE_KEYS (or SERVER_SUI_PRIVATE_KEY) is required by the sidecar")
        if not self.walrus_aggregator_urls:
            raise SettingsError("WALRUS_AGGREGATOR_URLS is required by the sidecar")
        if not self.seal_servers:
            raise SettingsError("SEAL_SERVER_CONFIGS is required by the sidecar")
