"""Which environment variables of the relayer and sidecar a manifest may set, and which it may not.

The relayer and sidecar read their configuration from environment variables (README's configuration
table). Inside the enclave those variables come from exactly three places, and each name belongs to
exactly one of them:

* ``RELAYER_VARIABLES``: the manifest's ``[relayer]`` table, committed to PCR16 with the rest of it;
* ``RUNTIME_VARIABLES``: set by the enclave runtime itself (where to listen, where the sidecar socket
  lives, the log format); a manifest naming one is refused;
* ``PROVISIONABLE_SECRETS``: only through provisioning (sealed to the attested enclave), never the host.

``tests/manifest/test_variables.py`` reads every environment lookup in the image's modules and
fails when a name is in none of the three (or in two).
"""

from __future__ import annotations

RELAYER_VARIABLES = frozenset(
    {
        # HTTP and accounts
        "ALLOWED_ORIGINS",
        "MAX_BODY_BYTES",
        "BODY_DRAIN_BYTES",
        "MEMWAL_ACCOUNT_ID",
        "MEMWAL_BUILD_COMMIT",
        "DELEGATE_CACHE_HOURS",
        "AUTH_MAX_CLOCK_DRIFT_SECS",
        "AUTH_ACCOUNT_CACHE_TTL_SECS",
        "AUTH_ACCOUNT_CACHE_MAX_ENTRIES",
        "AUTH_REVOCATION_POLL_SECS",
        # chain
        "SUI_NETWORK",
        "SUI_PROTOCOL",
        "SUI_RPC_URL",
        "SUI_GRAPHQL_URL",
        "SUI_GRPC_URL",
        "SUI_READ_LAG_TIMEOUT_SECS",
        "SUI_GAS_BUDGET",
        "SERVER_WALLET_MAX_IN_FLIGHT",
        "SERVER_WALLET_BATCH_MAX_BLOBS",
        "SERVER_WALLET_GAS_LEASE_SECS",
        "MEMWAL_PACKAGE_ID",
        "MEMWAL_REGISTRY_ID",
        # embeddings, LLM, and where memory text may go
        "EMBEDDING_PROVIDER",
        "EGRESS_POLICY",
        "OPENAI_API_BASE",
        "EMBEDDING_MODEL",
        "LLM_MODEL",
        "UPSTREAM_TIMEOUT_SECS",
        "EMBEDDING_CACHE_TTL_SECS",
        # Walrus
        "WALRUS_PUBLISHER_URL",
        "WALRUS_AGGREGATOR_URL",
        "WALRUS_AGGREGATOR_URLS",
        "WALRUS_PACKAGE_ID",
        "WALRUS_STORAGE_EPOCHS",
        "WALRUS_AGGREGATOR_RACE_AFTER_MS",
        "WALRUS_TIMEOUT_SECS",
        "WALRUS_MAX_BLOB_BYTES",
        "WALRUS_UPLOAD_CONCURRENCY",
        "WALRUS_NOT_FOUND_RETRY_MS",
        # Seal
        "SEAL_SERVER_CONFIGS",
        "SEAL_THRESHOLD",
        "SEAL_KEY_SERVER_TIMEOUT_MS",
        "SEAL_LEGACY_DECRYPT_KEY_SERVERS",
        "SEAL_VERIFY_KEY_SERVERS",
        "SEAL_KEY_CACHE_ENTRIES",
        "SEAL_DECRYPT_WORKERS",
        # sidecar process, jobs, limits, caches
        "SIDECAR_START_TIMEOUT_SECS",
        "WALLET_JOB_CONCURRENCY",
        "JOB_MAX_ATTEMPTS",
        "JOB_LEASE_SECS",
        "RATE_LIMIT_DISABLED",
        "RATE_LIMIT_REQUESTS_PER_MINUTE",
        "RATE_LIMIT_REQUESTS_PER_HOUR",
        "RATE_LIMIT_DELEGATE_KEY_PER_MINUTE",
        "RATE_LIMIT_STORAGE_BYTES",
        "BLOB_CACHE_TTL_SECS",
        "REDIS_CLUSTER",
        "BLOB_CACHE_MAX_BYTES",
        # timeouts and sizes (the relayer-core branch's settings, issue #7)
        "DATABASE_COMMAND_TIMEOUT_SECS",
        "DATABASE_CONNECT_TIMEOUT_SECS",
        "GRACEFUL_TIMEOUT_SECS",
        "HTTP_MAX_CONNECTIONS",
        "KEEP_ALIVE_TIMEOUT_SECS",
        "MAX_REQUEST_HEAD_BYTES",
        "POLL_INTERVAL_SECS",
        "REDIS_TIMEOUT_SECS",
        "RETRY_AFTER_SECS",
        "SIDECAR_CONNECT_TIMEOUT_SECS",
        "SIDECAR_HEALTH_TIMEOUT_SECS",
        "SIDECAR_HTTP_TIMEOUT_SECS",
        "SIDECAR_MAX_REPLY_BYTES",
        "SIDECAR_MAX_REQUEST_BYTES",
        "SIDECAR_TIMEOUT_SECS",
        "SUI_TIMEOUT_SECS",
        # request bodies and health probes (issue #9)
        "BODY_READ_TIMEOUT_SECS",
        "MIN_BODY_BYTES_PER_SEC",
        "HEALTH_INTERVAL_SECS",
        "HEALTH_PROBE_TIMEOUT_SECS",
        # the owner read API and owner tokens (issue #13)
        "OWNER_READ_RATE_LIMIT_PER_MINUTE",
        "OWNER_READ_RATE_LIMIT_PER_HOUR",
        "OWNER_READ_RATE_LIMIT_KEY_PER_MINUTE",
        "OWNER_TOKEN_TTL_SECS",
        "OWNER_TOKEN_RATE_LIMIT_PER_MINUTE",
        "OWNER_TOKEN_RATE_LIMIT_OWNER_PER_MINUTE",
        "OWNER_TOKEN_RATE_LIMIT_OWNER_PER_HOUR",
        # session chains (issue #14)
        "SESSION_LOCK_SECS",
        "SESSION_LOCK_WAIT_SECS",
        "SESSION_INDEX_CACHE_CLAIMS",
        # MCP's OAuth 2.1 server (issue #13)
        "OAUTH_ISSUER_URL",
        "OAUTH_ACCESS_TOKEN_TTL_SECS",
        "OAUTH_REFRESH_TOKEN_TTL_SECS",
        # tags, TTLs and forget by id (issue #13, extensions beyond upstream)
        "MEMORY_MAX_TAGS",
        "MEMORY_MAX_TAG_BYTES",
        "MEMORY_MIN_TTL_SECS",
        "MEMORY_MAX_TTL_SECS",
        "EXPIRY_SWEEP_INTERVAL_SECS",
        "EXPIRY_SWEEP_BATCH",
        "FORGET_TOMBSTONE_RETENTION_SECS",
        # profiling (docs/performance.md)
        "STAGE_TIMING_LOGS",
    }
)

# EGRESS_PLAINTEXT_DESTINATIONS: the runtime derives it from the [[egress]] routes marked allow_plaintext.
# METRICS_BIND: inside an enclave the runtime serves the operator metrics on its own vsock port.
# SIDECAR_PARENT_PID: the relayer tells its sidecar which process must stay its parent.
RUNTIME_VARIABLES = frozenset(
    {
        "BIND", "PORT", "MEMWAL_DATA_DIR", "SIDECAR_SOCKET", "LOG_FORMAT", "EGRESS_PLAINTEXT_DESTINATIONS",
        "METRICS_BIND", "SIDECAR_PARENT_PID",
    }
)

# Variables of the URLs the relayer and sidecar dial: each one's host:port must be an [[egress]] destination.
URL_VARIABLES = ("SUI_RPC_URL", "SUI_GRAPHQL_URL", "SUI_GRPC_URL", "OPENAI_API_BASE", "WALRUS_PUBLISHER_URL",
                 "WALRUS_AGGREGATOR_URL")
URL_LIST_VARIABLES = ("WALRUS_AGGREGATOR_URLS",)

# The only names an enclave accepts as secrets; everything else in its configuration is public and committed to
# PCR16. attestation.provisioning seals and opens them; a manifest naming one is refused.
PROVISIONABLE_SECRETS = frozenset(
    {
        "SERVER_SUI_PRIVATE_KEYS",
        "SERVER_SUI_PRIVATE_KEY",
        "OPENAI_API_KEY",
        "DATABASE_URL",
        "DATABASE_READ_URL",
        "REDIS_URL",
        "SIDECAR_AUTH_TOKEN",
        "OWNER_TOKEN_SERVICE_CREDENTIAL",
    }
)
