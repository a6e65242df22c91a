"""Sidecar settings, read once from its own environment (the relayer starts it with that environment)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from chain.transactions import MAX_BLOBS_PER_TRANSACTION
from memwal_common.environment import (
    SealServerConfig,
    SettingsError,
    env_flag,
    env_int,
    parse_csv,
    parse_key_server_ids,
    parse_seal_servers,
)
from memwal_common.secret import Secret
from memwal_common.shared_settings import (
    SUI_URL_VARIABLES,
    SuiProtocol,
    network_environment,
    seal_threshold,
    sui_endpoint_from,
)
from sidecar.protocol import MAX_DATA_BYTES

MIB = 1024 * 1024
MAX_DECRYPT_WORKERS = 256
GAS_LEASE_HTTP_CALLS = 3  # a gas lease outlives a coin re-read, a gas price read and the execution
MAX_KEY_CACHE_ENTRIES = 100_000  # about 1.1 KiB each (3 key servers): at most ~110 MiB


@dataclass(frozen=True)
class SidecarSettings:
    socket_path: str  # SIDECAR_SOCKET (required)
    auth_token: Secret  # SIDECAR_AUTH_TOKEN (required)
    server_keys: tuple[str, ...]  # SERVER_SUI_PRIVATE_KEYS (CSV) or SERVER_SUI_PRIVATE_KEY
    package_id: str  # MEMWAL_PACKAGE_ID
    sui_url: str  # SUI_GRAPHQL_URL, SUI_GRPC_URL or SUI_RPC_URL per SUI_PROTOCOL (memwal_common.shared_settings)
    sui_protocol: SuiProtocol  # SUI_PROTOCOL [graphql]
    read_lag_timeout_seconds: float  # SUI_READ_LAG_TIMEOUT_SECS [30]: wait this long for reads to reflect a transaction
    walrus_publisher_url: str  # WALRUS_PUBLISHER_URL
    walrus_aggregator_urls: tuple[str, ...]  # WALRUS_AGGREGATOR_URLS / WALRUS_AGGREGATOR_URL
    walrus_package_id: str  # WALRUS_PACKAGE_ID
    aggregator_race_after_ms: int  # WALRUS_AGGREGATOR_RACE_AFTER_MS [150]
    walrus_timeout_seconds: float  # WALRUS_TIMEOUT_SECS [15]: one aggregator read (publishes get 4x)
    walrus_not_found_retry_seconds: float  # WALRUS_NOT_FOUND_RETRY_MS [3000]: retry an all-404 read this long
    max_blob_bytes: int  # WALRUS_MAX_BLOB_BYTES [2 MiB], at most protocol.MAX_DATA_BYTES
    upload_concurrency: int  # WALRUS_UPLOAD_CONCURRENCY [4]: Walrus publishes in flight (the tag-and-transfer after one waits for a gas coin)
    seal_servers: tuple[SealServerConfig, ...]  # SEAL_SERVER_CONFIGS [network preset]
    seal_legacy_decrypt_servers: tuple[SealServerConfig, ...]  # SEAL_LEGACY_DECRYPT_KEY_SERVERS: decrypt only
    seal_verify_key_servers: bool  # SEAL_VERIFY_KEY_SERVERS [true]: proof of possession before encrypting
    seal_threshold: int  # SEAL_THRESHOLD [min(2, total weight)]
    seal_timeout_seconds: float  # SEAL_KEY_SERVER_TIMEOUT_MS [25000]
    seal_decrypt_workers: int  # SEAL_DECRYPT_WORKERS [CPU count]: Seal worker processes (decrypt and encrypt); 0 = a thread of the sidecar
    seal_key_cache_entries: int  # SEAL_KEY_CACHE_ENTRIES [4096] (~1.1 KiB each): released keys per (session, account, id); 0 = off
    redis_url: str | None  # REDIS_URL: blob cache; unset = no cache
    redis_timeout_seconds: float  # REDIS_TIMEOUT_SECS [2]: connect and per-command
    redis_cluster: bool  # REDIS_CLUSTER [false]: REDIS_URL names a node of a Redis Cluster
    blob_cache_ttl_seconds: int  # BLOB_CACHE_TTL_SECS
    blob_cache_max_bytes: int  # BLOB_CACHE_MAX_BYTES
    gas_budget: int  # SUI_GAS_BUDGET [50_000_000]
    transactions_per_wallet: int  # SERVER_WALLET_MAX_IN_FLIGHT [4]: each pays with its own gas coin
    batch_max_blobs: int  # SERVER_WALLET_BATCH_MAX_BLOBS [8]: jobs one queued transfer transaction may carry; 1 = off
    gas_lease_seconds: float  # SERVER_WALLET_GAS_LEASE_SECS [120]: a gas coin's fleet-wide lease in REDIS_URL (> 3 × SIDECAR_HTTP_TIMEOUT_SECS)
    max_request_bytes: int  # SIDECAR_MAX_REQUEST_BYTES [4 MiB]: larger request bodies are refused
    http_timeout_seconds: float  # SIDECAR_HTTP_TIMEOUT_SECS [30]: outbound calls without their own limit (Sui)
    http_max_connections: int  # HTTP_MAX_CONNECTIONS [64]: outbound connection pool
    graceful_timeout_seconds: float  # GRACEFUL_TIMEOUT_SECS [10]: in-flight requests finish on shutdown
    log_format: str  # LOG_FORMAT [pretty]: pretty | json
    stage_timing_logs: bool = False  # STAGE_TIMING_LOGS [false]: log each upload stage's wall time (ids and seconds only)

    @classmethod
    def from_environ(cls, explicit: Mapping[str, str] = os.environ) -> "SidecarSettings":
        env = network_environment(explicit)  # the SUI_NETWORK preset fills what is unset
        endpoint = sui_endpoint_from(env)
        keys = parse_csv(env.get("SERVER_SUI_PRIVATE_KEYS")) or parse_csv(env.get("SERVER_SUI_PRIVATE_KEY"))
        seal_servers = parse_seal_servers(env.get("SEAL_SERVER_CONFIGS", ""))
        settings = cls(
            socket_path=env.get("SIDECAR_SOCKET", ""),
            auth_token=Secret(env.get("SIDECAR_AUTH_TOKEN", "")),
            server_keys=keys,
            package_id=env.get("MEMWAL_PACKAGE_ID", ""),
            sui_url=endpoint.url,
            sui_protocol=endpoint.protocol,
            read_lag_timeout_seconds=float(env_int(env, "SUI_READ_LAG_TIMEOUT_SECS", 30, minimum=1)),
            walrus_publisher_url=env.get("WALRUS_PUBLISHER_URL", "").rstrip("/"),
            walrus_aggregator_urls=tuple(
                u.rstrip("/") for u in (parse_csv(env.get("WALRUS_AGGREGATOR_URLS")) or parse_csv(env.get("WALRUS_AGGREGATOR_URL")))
            ),
            walrus_package_id=env.get("WALRUS_PACKAGE_ID", ""),
            aggregator_race_after_ms=env_int(env, "WALRUS_AGGREGATOR_RACE_AFTER_MS", 150, minimum=0),
            walrus_timeout_seconds=float(env_int(env, "WALRUS_TIMEOUT_SECS", 15, minimum=1)),
            walrus_not_found_retry_seconds=env_int(env, "WALRUS_NOT_FOUND_RETRY_MS", 3000, minimum=0) / 1000.0,
            max_blob_bytes=env_int(env, "WALRUS_MAX_BLOB_BYTES", 2 * MIB, minimum=1024),
            upload_concurrency=env_int(env, "WALRUS_UPLOAD_CONCURRENCY", 4, minimum=1),
            seal_servers=seal_servers,
            seal_legacy_decrypt_servers=parse_key_server_ids(env.get("SEAL_LEGACY_DECRYPT_KEY_SERVERS", ""),
                                                             "SEAL_LEGACY_DECRYPT_KEY_SERVERS"),
            seal_verify_key_servers=env_flag(env.get("SEAL_VERIFY_KEY_SERVERS", "true")),
            seal_threshold=seal_threshold(env, seal_servers),
            seal_timeout_seconds=env_int(env, "SEAL_KEY_SERVER_TIMEOUT_MS", 25_000, minimum=100) / 1000.0,
            seal_decrypt_workers=env_int(env, "SEAL_DECRYPT_WORKERS", os.cpu_count() or 1, minimum=0),
            seal_key_cache_entries=env_int(env, "SEAL_KEY_CACHE_ENTRIES", 4096, minimum=0),
            redis_url=env.get("REDIS_URL") or None,
            redis_timeout_seconds=float(env_int(env, "REDIS_TIMEOUT_SECS", 2, minimum=1)),
            redis_cluster=env_flag(env.get("REDIS_CLUSTER")),
            blob_cache_ttl_seconds=env_int(env, "BLOB_CACHE_TTL_SECS", 1_209_600, minimum=0),
            blob_cache_max_bytes=env_int(env, "BLOB_CACHE_MAX_BYTES", 524_288, minimum=0),
            gas_budget=env_int(env, "SUI_GAS_BUDGET", 50_000_000, minimum=1),
            transactions_per_wallet=env_int(env, "SERVER_WALLET_MAX_IN_FLIGHT", 4, minimum=1),
            batch_max_blobs=env_int(env, "SERVER_WALLET_BATCH_MAX_BLOBS", 8, minimum=1),
            gas_lease_seconds=float(env_int(env, "SERVER_WALLET_GAS_LEASE_SECS", 120, minimum=1)),
            max_request_bytes=env_int(env, "SIDECAR_MAX_REQUEST_BYTES", 4 * MIB, minimum=64 * 1024),
            http_timeout_seconds=float(env_int(env, "SIDECAR_HTTP_TIMEOUT_SECS", 30, minimum=1)),
            http_max_connections=env_int(env, "HTTP_MAX_CONNECTIONS", 64, minimum=1),
            graceful_timeout_seconds=float(env_int(env, "GRACEFUL_TIMEOUT_SECS", 10, minimum=0)),
            log_format=env.get("LOG_FORMAT", "pretty"),
            stage_timing_logs=env_flag(env.get("STAGE_TIMING_LOGS")),
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        required = {
            "SIDECAR_SOCKET": self.socket_path,
            "SIDECAR_AUTH_TOKEN": self.auth_token.reveal(),
            "MEMWAL_PACKAGE_ID": self.package_id,
            f"{SUI_URL_VARIABLES[self.sui_protocol]} (SUI_PROTOCOL={self.sui_protocol})": self.sui_url,
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
        total_weight = sum(server.weight for server in self.seal_servers)
        if not 1 <= self.seal_threshold <= total_weight:
            raise SettingsError(f"SEAL_THRESHOLD must be between 1 and the total weight {total_weight}")
        if self.max_blob_bytes > MAX_DATA_BYTES:
            raise SettingsError(f"WALRUS_MAX_BLOB_BYTES must be at most {MAX_DATA_BYTES} (the sidecar protocol's cap)")
        if self.seal_decrypt_workers > MAX_DECRYPT_WORKERS:
            raise SettingsError(f"SEAL_DECRYPT_WORKERS must be at most {MAX_DECRYPT_WORKERS}")
        if self.seal_key_cache_entries > MAX_KEY_CACHE_ENTRIES:
            raise SettingsError(f"SEAL_KEY_CACHE_ENTRIES must be at most {MAX_KEY_CACHE_ENTRIES}")
        if self.batch_max_blobs > MAX_BLOBS_PER_TRANSACTION:
            raise SettingsError(f"SERVER_WALLET_BATCH_MAX_BLOBS must be at most {MAX_BLOBS_PER_TRANSACTION}")
        if self.gas_lease_seconds <= GAS_LEASE_HTTP_CALLS * self.http_timeout_seconds:
            raise SettingsError(f"SERVER_WALLET_GAS_LEASE_SECS must exceed {GAS_LEASE_HTTP_CALLS} × "
                                "SIDECAR_HTTP_TIMEOUT_SECS (a lease covers a re-read, the gas price and the execution)")
        if self.log_format not in {"pretty", "json"}:
            raise SettingsError("LOG_FORMAT must be pretty or json")
