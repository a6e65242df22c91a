"""Relayer settings: read once from the environment into a frozen dataclass, then validated.

Every field names its environment variable and default; README's configuration table is generated
from the same names. Secrets are ``Secret`` values so they never print.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

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
    DEFAULT_SUI_PROTOCOL,
    SUI_PROTOCOLS,
    SuiEndpoint,
    SuiProtocol,
    default_seal_threshold,
    network_environment,
    sui_endpoint,
    sui_network,
    sui_protocol_from,
)
from relayer.egress_policy import EGRESS_POLICIES, PlaintextPolicy, parse_destinations
from relayer.embedding_models import EMBEDDING_PROVIDERS, LOCAL_MODEL_ID
from relayer.validation import MAX_TAG_LENGTH_CEILING, MAX_TAGS_CEILING, MAX_TTL_SECONDS_CEILING

MIB = 1024 * 1024
MIN_OWNER_TOKEN_TTL_SECONDS = 60
MAX_OAUTH_REFRESH_TTL_SECONDS = 90 * 86_400  # an unused grant lapses within a quarter
MAX_OWNER_TOKEN_TTL_SECONDS = 86_400  # a day: a leaked token stays useful no longer (upstream clamps too)
GIB = 1024 * MIB
DAY_SECONDS = 86_400
YEAR_SECONDS = 365 * DAY_SECONDS


@dataclass(frozen=True)
class Settings:
    # --- HTTP ---
    bind: str = "127.0.0.1:8000"  # BIND: host:port, unix:/path or fd://N (PORT sets the port of the default)
    allowed_origins: tuple[str, ...] = ()  # ALLOWED_ORIGINS: CSV; CORS is deny-all when empty
    max_body_bytes: int = 2 * MIB  # MAX_BODY_BYTES: protected routes reject larger bodies with 413
    # An oversized body up to this size is read and discarded before the 413, so closing the connection does
    # not reset it under the client (which would lose the answer); larger ones are cut at once.
    body_drain_bytes: int = 8 * MIB  # BODY_DRAIN_BYTES
    max_request_head_bytes: int = 16 * 1024  # MAX_REQUEST_HEAD_BYTES: request line + headers (hypercorn h11)
    keep_alive_timeout_seconds: float = 30.0  # KEEP_ALIVE_TIMEOUT_SECS: idle keep-alive connections close after this
    graceful_timeout_seconds: float = 10.0  # GRACEFUL_TIMEOUT_SECS: in-flight requests finish on shutdown (also the sidecar)
    retry_after_seconds: int = 5  # RETRY_AFTER_SECS: Retry-After sent with every 503 for an outage
    body_read_timeout_seconds: float = 10.0  # BODY_READ_TIMEOUT_SECS: grace for a request body to start arriving
    min_body_bytes_per_second: int = 8192  # MIN_BODY_BYTES_PER_SEC: then it must average this rate, else 408 + close
    metrics_bind: str = ""  # METRICS_BIND: operator-only Prometheus listener (host:port or unix:/path); empty = off
    health_interval_seconds: float = 2.0  # HEALTH_INTERVAL_SECS: background dependency probes for /health
    health_probe_timeout_seconds: float = 2.0  # HEALTH_PROBE_TIMEOUT_SECS: one probe
    log_format: str = "pretty"  # LOG_FORMAT: pretty | json (relayer, sidecar, indexer)
    stage_timing_logs: bool = False  # STAGE_TIMING_LOGS: log each remember stage's wall time (ids and seconds only)
    # --- storage ---
    database_url: str | None = None  # DATABASE_URL (required to serve): PostgreSQL with pgvector
    database_read_url: str | None = None  # DATABASE_READ_URL: a read replica for recall's vector search; unset = DATABASE_URL
    redis_url: str | None = None  # REDIS_URL (required to serve)
    data_dir: str = ".data"  # MEMWAL_DATA_DIR: the sidecar socket lives here
    database_connect_timeout_seconds: float = 10.0  # DATABASE_CONNECT_TIMEOUT_SECS
    database_command_timeout_seconds: float = 30.0  # DATABASE_COMMAND_TIMEOUT_SECS: per statement
    redis_timeout_seconds: float = 2.0  # REDIS_TIMEOUT_SECS: connect and per command (relayer and sidecar)
    redis_cluster: bool = False  # REDIS_CLUSTER: REDIS_URL names a node of a Redis Cluster (relayer and sidecar)
    # --- chain ---
    sui_network: str = "mainnet"  # SUI_NETWORK: mainnet | testnet pick every preset below (memwal_common.networks)
    sui_rpc_url: str = ""  # SUI_RPC_URL: JSON-RPC endpoint, no preset (also served to SDKs via /config)
    sui_graphql_url: str = ""  # SUI_GRAPHQL_URL: GraphQL endpoint [preset]
    sui_grpc_url: str = ""  # SUI_GRPC_URL: gRPC (sui.rpc.v2) endpoint [preset]
    sui_protocol: SuiProtocol = DEFAULT_SUI_PROTOCOL  # SUI_PROTOCOL: graphql | grpc | jsonrpc for relayer, sidecar, indexer
    sui_timeout_seconds: float = 15.0  # SUI_TIMEOUT_SECS: per Sui request of the relayer and indexer
    http_max_connections: int = 64  # HTTP_MAX_CONNECTIONS: outbound connection pool (relayer and sidecar)
    package_id: str = ""  # MEMWAL_PACKAGE_ID (required): the original (version 1) package id
    registry_id: str = ""  # MEMWAL_REGISTRY_ID (required)
    default_account_id: str = ""  # MEMWAL_ACCOUNT_ID: account hint when a request sends none
    account_cache_hours: int = 24  # DELEGATE_CACHE_HOURS
    auth_account_cache_ttl_seconds: int = 10  # AUTH_ACCOUNT_CACHE_TTL_SECS: trust a key→account check this long; 0 = every request
    auth_account_cache_max_entries: int = 10_000  # AUTH_ACCOUNT_CACHE_MAX_ENTRIES: least recently used dropped first
    auth_revocation_poll_seconds: float = 2.0  # AUTH_REVOCATION_POLL_SECS: reading DelegateKeyRemoved/AccountDeactivated
    indexer_poll_seconds: int = 5  # POLL_INTERVAL_SECS: the indexer's pause when it has caught up
    # --- embeddings / LLM ---
    embedding_provider: str = "openai"  # EMBEDDING_PROVIDER: openai (upstream's) | local (in-process model, no egress)
    egress_policy: str = "open"  # EGRESS_POLICY: open | private (no memory text leaves; README "Privacy")
    plaintext_destinations: tuple[str, ...] = ()  # EGRESS_PLAINTEXT_DESTINATIONS: CSV host:port (enclave: from allow_plaintext)
    openai_api_key: Secret = field(default_factory=lambda: Secret(""))  # OPENAI_API_KEY: unset = mock embeddings, no LLM
    openai_api_base: str = "https://api.openai.com/v1"  # OPENAI_API_BASE: embeddings (openai provider) and the LLM
    embedding_model: str = "openai/text-embedding-3-small"  # EMBEDDING_MODEL: local's default is its one model
    llm_model: str = "openai/gpt-4o-mini"  # LLM_MODEL
    upstream_timeout_seconds: float = 30.0  # UPSTREAM_TIMEOUT_SECS: embeddings and chat calls
    embedding_cache_ttl_seconds: int = 600  # EMBEDDING_CACHE_TTL_SECS
    # --- walrus ---
    walrus_publisher_url: str = ""  # WALRUS_PUBLISHER_URL
    walrus_aggregator_urls: tuple[str, ...] = ()  # WALRUS_AGGREGATOR_URLS (CSV) or WALRUS_AGGREGATOR_URL
    walrus_package_id: str = ""  # WALRUS_PACKAGE_ID [preset]
    walrus_storage_epochs: int = 3  # WALRUS_STORAGE_EPOCHS: default 3 on mainnet else 5; max 5
    # --- sidecar ---
    sidecar_socket: str = ""  # SIDECAR_SOCKET: Unix socket path; default <data dir>/sidecar.sock
    sidecar_auth_token: Secret = field(default_factory=lambda: Secret(""))  # SIDECAR_AUTH_TOKEN: random when unset
    sidecar_start_timeout_seconds: float = 15.0  # SIDECAR_START_TIMEOUT_SECS
    sidecar_timeout_seconds: float = 120.0  # SIDECAR_TIMEOUT_SECS: one sidecar call, its upstream calls included
    sidecar_connect_timeout_seconds: float = 5.0  # SIDECAR_CONNECT_TIMEOUT_SECS
    sidecar_health_timeout_seconds: float = 2.0  # SIDECAR_HEALTH_TIMEOUT_SECS: one health probe
    sidecar_max_reply_bytes: int = 256 * MIB  # SIDECAR_MAX_REPLY_BYTES: larger sidecar replies are refused
    # --- jobs ---
    job_concurrency: int = 8  # WALLET_JOB_CONCURRENCY
    job_max_attempts: int = 5  # JOB_MAX_ATTEMPTS
    job_lease_seconds: int = 120  # JOB_LEASE_SECS: a crashed worker's job is retried after this
    # --- limits ---
    rate_limit_disabled: bool = False  # RATE_LIMIT_DISABLED
    rate_limit_per_minute: int = 60  # RATE_LIMIT_REQUESTS_PER_MINUTE
    rate_limit_per_hour: int = 500  # RATE_LIMIT_REQUESTS_PER_HOUR
    rate_limit_delegate_per_minute: int = 30  # RATE_LIMIT_DELEGATE_KEY_PER_MINUTE
    storage_quota_bytes: int = GIB  # RATE_LIMIT_STORAGE_BYTES: <= 0 is unlimited
    clock_drift_seconds: int = 300  # AUTH_MAX_CLOCK_DRIFT_SECS
    # --- owner read API and owner tokens (a budget of their own: reads never spend the write budget) ---
    owner_read_per_minute: int = 120  # OWNER_READ_RATE_LIMIT_PER_MINUTE: per owner
    owner_read_per_hour: int = 3000  # OWNER_READ_RATE_LIMIT_PER_HOUR: per owner
    owner_read_key_per_minute: int = 60  # OWNER_READ_RATE_LIMIT_KEY_PER_MINUTE: per delegate key or owner token
    owner_token_service_credential: Secret = field(default_factory=lambda: Secret(""))  # OWNER_TOKEN_SERVICE_CREDENTIAL: empty = issuance off (401)
    owner_token_ttl_seconds: int = 900  # OWNER_TOKEN_TTL_SECS: 60..86400
    owner_token_per_minute: int = 30  # OWNER_TOKEN_RATE_LIMIT_PER_MINUTE: issuance per service credential
    owner_token_owner_per_minute: int = 5  # OWNER_TOKEN_RATE_LIMIT_OWNER_PER_MINUTE: issuance per owner
    owner_token_owner_per_hour: int = 30  # OWNER_TOKEN_RATE_LIMIT_OWNER_PER_HOUR: issuance per owner
    # --- MCP's OAuth 2.1 authorization server (relayer/mcp/oauth.py) ---
    oauth_issuer_url: str = ""  # OAUTH_ISSUER_URL: the relayer's public https URL; empty = OAuth off (MCP takes owner tokens and signatures)
    oauth_access_token_ttl_seconds: int = 3600  # OAUTH_ACCESS_TOKEN_TTL_SECS: 60..86400
    oauth_refresh_token_ttl_seconds: int = 2_592_000  # OAUTH_REFRESH_TOKEN_TTL_SECS: 30 days; 60..7776000
    # --- memory extensions beyond upstream: tags, TTLs, forget ---
    memory_max_tags: int = 16  # MEMORY_MAX_TAGS: distinct tags per memory and per recall filter, 1..64
    memory_max_tag_bytes: int = 64  # MEMORY_MAX_TAG_BYTES: UTF-8 bytes per tag, 1..256
    memory_min_ttl_seconds: int = 60  # MEMORY_MIN_TTL_SECS: shortest ttl_seconds accepted
    memory_max_ttl_seconds: int = 5 * YEAR_SECONDS  # MEMORY_MAX_TTL_SECS: longest ttl_seconds accepted (≤ 100 years)
    expiry_sweep_interval_seconds: float = 60.0  # EXPIRY_SWEEP_INTERVAL_SECS: between rounds of the expiry sweep
    expiry_sweep_batch: int = 500  # EXPIRY_SWEEP_BATCH: memories forgotten (and tombstones pruned) per round
    forget_tombstone_retention_seconds: int = 30 * DAY_SECONDS  # FORGET_TOMBSTONE_RETENTION_SECS: ≥ 1 day
    blob_cache_ttl_seconds: int = 1_209_600  # BLOB_CACHE_TTL_SECS
    blob_cache_max_bytes: int = 524_288  # BLOB_CACHE_MAX_BYTES
    session_lock_seconds: int = 120  # SESSION_LOCK_SECS: an append's per-session Redis lock expires after this
    session_lock_wait_seconds: int = 30  # SESSION_LOCK_WAIT_SECS: an append waits this long for it, then 409 busy
    session_index_cache_claims: int = 100_000  # SESSION_INDEX_CACHE_CLAIMS: frame claims kept in memory (0: list every time)
    # --- seal (passed to the sidecar) ---
    seal_servers: tuple[SealServerConfig, ...] = ()  # SEAL_SERVER_CONFIGS: JSON [{objectId, weight, aggregatorUrl?}] [preset]
    seal_legacy_decrypt_servers: tuple[SealServerConfig, ...] = ()  # SEAL_LEGACY_DECRYPT_KEY_SERVERS: CSV ids, decrypt only
    seal_threshold: int = 0  # SEAL_THRESHOLD: 0 = min(2, total weight) (memwal_common.shared_settings)

    def validate(self) -> None:
        if not self.package_id:
            raise SettingsError("MEMWAL_PACKAGE_ID is required")
        if not self.registry_id:
            raise SettingsError("MEMWAL_REGISTRY_ID is required")
        self.validate_sui()
        if not self.walrus_aggregator_urls:
            raise SettingsError("WALRUS_AGGREGATOR_URL(S) is required")
        if not self.walrus_publisher_url:
            raise SettingsError("WALRUS_PUBLISHER_URL is required")
        if not self.walrus_package_id:
            raise SettingsError("WALRUS_PACKAGE_ID is required")
        if not 1 <= self.walrus_storage_epochs <= 5:
            raise SettingsError("WALRUS_STORAGE_EPOCHS must be between 1 and 5")
        if self.log_format not in {"pretty", "json"}:
            raise SettingsError("LOG_FORMAT must be pretty or json")
        self.validate_embeddings()
        if not MIN_OWNER_TOKEN_TTL_SECONDS <= self.owner_token_ttl_seconds <= MAX_OWNER_TOKEN_TTL_SECONDS:
            raise SettingsError(f"OWNER_TOKEN_TTL_SECS must be between {MIN_OWNER_TOKEN_TTL_SECONDS} and {MAX_OWNER_TOKEN_TTL_SECONDS}")
        self.validate_oauth()
        self.validate_memory_extensions()
        if not self.seal_servers:
            raise SettingsError("SEAL_SERVER_CONFIGS must list at least one key server")
        total_weight = sum(server.weight for server in self.seal_servers)
        if not 1 <= self.effective_seal_threshold <= total_weight:
            raise SettingsError(f"SEAL_THRESHOLD must be between 1 and the total weight {total_weight}")

    def validate_oauth(self) -> None:
        if self.oauth_issuer_url:
            parsed = urlsplit(self.oauth_issuer_url)
            loopback = parsed.hostname in {"localhost", "127.0.0.1", "::1"}
            if parsed.scheme != "https" and not (parsed.scheme == "http" and loopback):
                raise SettingsError("OAUTH_ISSUER_URL must be an https URL (http only on loopback, for development)")
            if parsed.query or parsed.fragment or parsed.path not in {"", "/"}:
                raise SettingsError("OAUTH_ISSUER_URL must be the relayer's origin, without a path, query or fragment")
        if not MIN_OWNER_TOKEN_TTL_SECONDS <= self.oauth_access_token_ttl_seconds <= MAX_OWNER_TOKEN_TTL_SECONDS:
            raise SettingsError(f"OAUTH_ACCESS_TOKEN_TTL_SECS must be between {MIN_OWNER_TOKEN_TTL_SECONDS} and {MAX_OWNER_TOKEN_TTL_SECONDS}")
        if not MIN_OWNER_TOKEN_TTL_SECONDS <= self.oauth_refresh_token_ttl_seconds <= MAX_OAUTH_REFRESH_TTL_SECONDS:
            raise SettingsError(f"OAUTH_REFRESH_TOKEN_TTL_SECS must be between {MIN_OWNER_TOKEN_TTL_SECONDS} and {MAX_OAUTH_REFRESH_TTL_SECONDS}")
    def validate_memory_extensions(self) -> None:
        if not 1 <= self.memory_max_tags <= MAX_TAGS_CEILING:
            raise SettingsError(f"MEMORY_MAX_TAGS must be between 1 and {MAX_TAGS_CEILING}")
        if not 1 <= self.memory_max_tag_bytes <= MAX_TAG_LENGTH_CEILING:
            raise SettingsError(f"MEMORY_MAX_TAG_BYTES must be between 1 and {MAX_TAG_LENGTH_CEILING}")
        if not 1 <= self.memory_min_ttl_seconds <= self.memory_max_ttl_seconds <= MAX_TTL_SECONDS_CEILING:
            raise SettingsError(f"MEMORY_MIN_TTL_SECS ≤ MEMORY_MAX_TTL_SECS ≤ {MAX_TTL_SECONDS_CEILING} must hold (both ≥ 1)")
        if self.forget_tombstone_retention_seconds < DAY_SECONDS:
            # a tombstone must outlive every retry of the remember job it guards
            raise SettingsError(f"FORGET_TOMBSTONE_RETENTION_SECS must be at least {DAY_SECONDS}")

    def validate_embeddings(self) -> None:
        if self.embedding_provider not in EMBEDDING_PROVIDERS:
            raise SettingsError(f"EMBEDDING_PROVIDER must be {' or '.join(EMBEDDING_PROVIDERS)}")
        if self.embedding_provider == "local" and self.embedding_model != LOCAL_MODEL_ID:
            raise SettingsError(f"EMBEDDING_PROVIDER=local runs {LOCAL_MODEL_ID}; EMBEDDING_MODEL names {self.embedding_model}")
        if self.egress_policy not in EGRESS_POLICIES:
            raise SettingsError(f"EGRESS_POLICY must be {' or '.join(EGRESS_POLICIES)}")
        if self.egress_policy == "private" and self.embedding_provider != "local":
            raise SettingsError("EGRESS_POLICY=private keeps memory text inside: it needs EMBEDDING_PROVIDER=local")

    @property
    def plaintext_policy(self) -> PlaintextPolicy:
        """Where memory text may go under EGRESS_POLICY (relayer/egress_policy.py)."""
        return PlaintextPolicy(self.egress_policy, llm_url=self.openai_api_base, allowed=frozenset(self.plaintext_destinations))

    def validate_sui(self) -> None:
        if self.sui_protocol not in SUI_PROTOCOLS:
            raise SettingsError(f"SUI_PROTOCOL must be {', '.join(SUI_PROTOCOLS)}")
        if not self.sui.url:
            raise SettingsError(f"{self.sui.variable} is required when SUI_PROTOCOL={self.sui_protocol}")

    def validate_indexer(self) -> None:
        """What ``python -m relayer.indexer`` needs (a subset of ``validate``)."""
        if not self.database_url:
            raise SettingsError("DATABASE_URL is required")
        if not self.package_id:
            raise SettingsError("MEMWAL_PACKAGE_ID is required")
        self.validate_sui()
        if self.log_format not in {"pretty", "json"}:
            raise SettingsError("LOG_FORMAT must be pretty or json")

    @property
    def sui(self) -> SuiEndpoint:
        """The Sui URL this deployment reads through."""
        return sui_endpoint(self.sui_protocol, rpc_url=self.sui_rpc_url, graphql_url=self.sui_graphql_url,
                            grpc_url=self.sui_grpc_url)

    @property
    def effective_seal_threshold(self) -> int:
        return self.seal_threshold or default_seal_threshold(self.seal_servers)

    @property
    def public_sui_rpc_url(self) -> str:
        """What /config advertises as ``suiRpcUrl``: SDKs send JSON-RPC there, so only a JSON-RPC URL (or none)."""
        return self.sui_rpc_url

    @classmethod
    def from_environ(cls, explicit: Mapping[str, str]) -> "Settings":
        network = sui_network(explicit)
        env = network_environment(explicit)  # the SUI_NETWORK preset fills what is unset
        bind = env.get("BIND") or f"127.0.0.1:{env_int(env, 'PORT', 8000, minimum=0)}"
        aggregators = parse_csv(env.get("WALRUS_AGGREGATOR_URLS")) or parse_csv(env.get("WALRUS_AGGREGATOR_URL"))
        data_dir = env.get("MEMWAL_DATA_DIR", ".data")
        provider = env.get("EMBEDDING_PROVIDER", "openai")
        return cls(
            bind=bind,
            allowed_origins=parse_csv(env.get("ALLOWED_ORIGINS")),
            max_body_bytes=env_int(env, "MAX_BODY_BYTES", 2 * MIB, minimum=1024),
            body_drain_bytes=env_int(env, "BODY_DRAIN_BYTES", 8 * MIB, minimum=0),
            max_request_head_bytes=env_int(env, "MAX_REQUEST_HEAD_BYTES", 16 * 1024, minimum=1024),
            keep_alive_timeout_seconds=float(env_int(env, "KEEP_ALIVE_TIMEOUT_SECS", 30, minimum=1)),
            graceful_timeout_seconds=float(env_int(env, "GRACEFUL_TIMEOUT_SECS", 10, minimum=0)),
            retry_after_seconds=env_int(env, "RETRY_AFTER_SECS", 5, minimum=1),
            body_read_timeout_seconds=float(env_int(env, "BODY_READ_TIMEOUT_SECS", 10, minimum=1)),
            min_body_bytes_per_second=env_int(env, "MIN_BODY_BYTES_PER_SEC", 8192, minimum=1),
            metrics_bind=env.get("METRICS_BIND", ""),
            health_interval_seconds=float(env_int(env, "HEALTH_INTERVAL_SECS", 2, minimum=1)),
            health_probe_timeout_seconds=float(env_int(env, "HEALTH_PROBE_TIMEOUT_SECS", 2, minimum=1)),
            log_format=env.get("LOG_FORMAT", "pretty"),
            stage_timing_logs=env_flag(env.get("STAGE_TIMING_LOGS")),
            database_url=env.get("DATABASE_URL") or None,
            database_read_url=env.get("DATABASE_READ_URL") or None,
            redis_url=env.get("REDIS_URL") or None,
            data_dir=data_dir,
            database_connect_timeout_seconds=float(env_int(env, "DATABASE_CONNECT_TIMEOUT_SECS", 10, minimum=1)),
            database_command_timeout_seconds=float(env_int(env, "DATABASE_COMMAND_TIMEOUT_SECS", 30, minimum=1)),
            redis_timeout_seconds=float(env_int(env, "REDIS_TIMEOUT_SECS", 2, minimum=1)),
            redis_cluster=env_flag(env.get("REDIS_CLUSTER")),
            sui_network=network,
            sui_rpc_url=env.get("SUI_RPC_URL", ""),
            sui_graphql_url=env.get("SUI_GRAPHQL_URL", ""),
            sui_grpc_url=env.get("SUI_GRPC_URL", ""),
            sui_protocol=sui_protocol_from(env),
            sui_timeout_seconds=float(env_int(env, "SUI_TIMEOUT_SECS", 15, minimum=1)),
            http_max_connections=env_int(env, "HTTP_MAX_CONNECTIONS", 64, minimum=1),
            package_id=env.get("MEMWAL_PACKAGE_ID", ""),
            registry_id=env.get("MEMWAL_REGISTRY_ID", ""),
            default_account_id=env.get("MEMWAL_ACCOUNT_ID", ""),
            account_cache_hours=env_int(env, "DELEGATE_CACHE_HOURS", 24, minimum=0),
            auth_account_cache_ttl_seconds=env_int(env, "AUTH_ACCOUNT_CACHE_TTL_SECS", 10, minimum=0),
            auth_account_cache_max_entries=env_int(env, "AUTH_ACCOUNT_CACHE_MAX_ENTRIES", 10_000, minimum=1),
            auth_revocation_poll_seconds=float(env_int(env, "AUTH_REVOCATION_POLL_SECS", 2, minimum=1)),
            indexer_poll_seconds=env_int(env, "POLL_INTERVAL_SECS", 5, minimum=1),
            embedding_provider=provider,
            egress_policy=env.get("EGRESS_POLICY", "open"),
            plaintext_destinations=parse_destinations(env.get("EGRESS_PLAINTEXT_DESTINATIONS", "")),
            openai_api_key=Secret(env.get("OPENAI_API_KEY", "")),
            openai_api_base=env.get("OPENAI_API_BASE", "https://api.openai.com/v1").rstrip("/"),
            embedding_model=env.get("EMBEDDING_MODEL") or (LOCAL_MODEL_ID if provider == "local" else "openai/text-embedding-3-small"),
            llm_model=env.get("LLM_MODEL", "openai/gpt-4o-mini"),
            upstream_timeout_seconds=float(env_int(env, "UPSTREAM_TIMEOUT_SECS", 30, minimum=1)),
            embedding_cache_ttl_seconds=env_int(env, "EMBEDDING_CACHE_TTL_SECS", 600, minimum=0),
            walrus_publisher_url=env.get("WALRUS_PUBLISHER_URL", "").rstrip("/"),
            walrus_aggregator_urls=tuple(url.rstrip("/") for url in aggregators),
            walrus_package_id=env.get("WALRUS_PACKAGE_ID", ""),
            walrus_storage_epochs=env_int(env, "WALRUS_STORAGE_EPOCHS", 5),
            sidecar_socket=env.get("SIDECAR_SOCKET", ""),
            sidecar_auth_token=Secret(env.get("SIDECAR_AUTH_TOKEN", "")),
            sidecar_start_timeout_seconds=float(env_int(env, "SIDECAR_START_TIMEOUT_SECS", 15, minimum=1)),
            sidecar_timeout_seconds=float(env_int(env, "SIDECAR_TIMEOUT_SECS", 120, minimum=1)),
            sidecar_connect_timeout_seconds=float(env_int(env, "SIDECAR_CONNECT_TIMEOUT_SECS", 5, minimum=1)),
            sidecar_health_timeout_seconds=float(env_int(env, "SIDECAR_HEALTH_TIMEOUT_SECS", 2, minimum=1)),
            sidecar_max_reply_bytes=env_int(env, "SIDECAR_MAX_REPLY_BYTES", 256 * MIB, minimum=MIB),
            job_concurrency=env_int(env, "WALLET_JOB_CONCURRENCY", 8, minimum=1),
            job_max_attempts=env_int(env, "JOB_MAX_ATTEMPTS", 5, minimum=1),
            job_lease_seconds=env_int(env, "JOB_LEASE_SECS", 120, minimum=5),
            rate_limit_disabled=env_flag(env.get("RATE_LIMIT_DISABLED")),
            rate_limit_per_minute=env_int(env, "RATE_LIMIT_REQUESTS_PER_MINUTE", 60, minimum=1),
            rate_limit_per_hour=env_int(env, "RATE_LIMIT_REQUESTS_PER_HOUR", 500, minimum=1),
            rate_limit_delegate_per_minute=env_int(env, "RATE_LIMIT_DELEGATE_KEY_PER_MINUTE", 30, minimum=1),
            storage_quota_bytes=env_int(env, "RATE_LIMIT_STORAGE_BYTES", GIB),
            clock_drift_seconds=env_int(env, "AUTH_MAX_CLOCK_DRIFT_SECS", 300, minimum=1),
            owner_read_per_minute=env_int(env, "OWNER_READ_RATE_LIMIT_PER_MINUTE", 120, minimum=1),
            owner_read_per_hour=env_int(env, "OWNER_READ_RATE_LIMIT_PER_HOUR", 3000, minimum=1),
            owner_read_key_per_minute=env_int(env, "OWNER_READ_RATE_LIMIT_KEY_PER_MINUTE", 60, minimum=1),
            owner_token_service_credential=Secret(env.get("OWNER_TOKEN_SERVICE_CREDENTIAL", "")),
            owner_token_ttl_seconds=env_int(env, "OWNER_TOKEN_TTL_SECS", 900, minimum=MIN_OWNER_TOKEN_TTL_SECONDS),
            owner_token_per_minute=env_int(env, "OWNER_TOKEN_RATE_LIMIT_PER_MINUTE", 30, minimum=1),
            owner_token_owner_per_minute=env_int(env, "OWNER_TOKEN_RATE_LIMIT_OWNER_PER_MINUTE", 5, minimum=1),
            owner_token_owner_per_hour=env_int(env, "OWNER_TOKEN_RATE_LIMIT_OWNER_PER_HOUR", 30, minimum=1),
            oauth_issuer_url=env.get("OAUTH_ISSUER_URL", "").strip(),
            oauth_access_token_ttl_seconds=env_int(env, "OAUTH_ACCESS_TOKEN_TTL_SECS", 3600, minimum=MIN_OWNER_TOKEN_TTL_SECONDS),
            oauth_refresh_token_ttl_seconds=env_int(env, "OAUTH_REFRESH_TOKEN_TTL_SECS", 2_592_000,
                                                    minimum=MIN_OWNER_TOKEN_TTL_SECONDS),
            memory_max_tags=env_int(env, "MEMORY_MAX_TAGS", 16, minimum=1),
            memory_max_tag_bytes=env_int(env, "MEMORY_MAX_TAG_BYTES", 64, minimum=1),
            memory_min_ttl_seconds=env_int(env, "MEMORY_MIN_TTL_SECS", 60, minimum=1),
            memory_max_ttl_seconds=env_int(env, "MEMORY_MAX_TTL_SECS", 5 * YEAR_SECONDS, minimum=1),
            expiry_sweep_interval_seconds=float(env_int(env, "EXPIRY_SWEEP_INTERVAL_SECS", 60, minimum=1)),
            expiry_sweep_batch=env_int(env, "EXPIRY_SWEEP_BATCH", 500, minimum=1),
            forget_tombstone_retention_seconds=env_int(env, "FORGET_TOMBSTONE_RETENTION_SECS", 30 * DAY_SECONDS, minimum=DAY_SECONDS),
            blob_cache_ttl_seconds=env_int(env, "BLOB_CACHE_TTL_SECS", 1_209_600, minimum=0),
            blob_cache_max_bytes=env_int(env, "BLOB_CACHE_MAX_BYTES", 524_288, minimum=0),
            session_lock_seconds=env_int(env, "SESSION_LOCK_SECS", 120, minimum=1),
            session_lock_wait_seconds=env_int(env, "SESSION_LOCK_WAIT_SECS", 30, minimum=0),
            session_index_cache_claims=env_int(env, "SESSION_INDEX_CACHE_CLAIMS", 100_000, minimum=0),
            seal_servers=parse_seal_servers(env.get("SEAL_SERVER_CONFIGS", "")),
            seal_legacy_decrypt_servers=parse_key_server_ids(env.get("SEAL_LEGACY_DECRYPT_KEY_SERVERS", ""),
                                                             "SEAL_LEGACY_DECRYPT_KEY_SERVERS"),
            seal_threshold=env_int(env, "SEAL_THRESHOLD", 0, minimum=0),
        )


