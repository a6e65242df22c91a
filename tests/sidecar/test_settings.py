"""sidecar.settings: the same Sui endpoint and Seal threshold rules as the relayer, limits with units, and caps
that keep the settings inside the protocol's bounds."""

from __future__ import annotations

import json
import os

import pytest

from memwal_common.environment import SettingsError
from memwal_common.networks import TESTNET
from sidecar.protocol import MAX_DATA_BYTES
from sidecar.settings import SidecarSettings

VALID = {
    "SUI_NETWORK": "localnet",  # no preset: every URL and id below is explicit
    "SIDECAR_SOCKET": "/run/sidecar.sock", "SIDECAR_AUTH_TOKEN": "t" * 32, "SERVER_SUI_PRIVATE_KEY": "00" * 32,
    "MEMWAL_PACKAGE_ID": "0x1", "SUI_RPC_URL": "http://sui", "SUI_GRAPHQL_URL": "http://gql",
    "WALRUS_PUBLISHER_URL": "http://pub", "WALRUS_AGGREGATOR_URLS": "http://a,http://b", "WALRUS_PACKAGE_ID": "0x2",
    "SEAL_SERVER_CONFIGS": json.dumps([{"objectId": "0xa"}, {"objectId": "0xb"}, {"objectId": "0xc"}]),
}


def settings(**overrides: str) -> SidecarSettings:
    return SidecarSettings.from_environ({**VALID, **overrides})


class TestSidecarSettings:
    def test_defaults(self):
        parsed = settings()
        assert (parsed.sui_protocol, parsed.sui_url, parsed.seal_threshold) == ("graphql", "http://gql", 2)
        assert (parsed.max_request_bytes, parsed.http_timeout_seconds, parsed.redis_timeout_seconds) == (4 * 1024 * 1024, 30, 2)
        assert (parsed.graceful_timeout_seconds, parsed.http_max_connections, parsed.log_format) == (10, 64, "pretty")
        assert "t" * 32 not in repr(parsed)
        assert (parsed.seal_decrypt_workers, parsed.seal_key_cache_entries) == (os.cpu_count() or 1, 4096)

    def test_a_gas_lease_outlives_the_calls_it_covers(self):
        assert settings().gas_lease_seconds == 120
        assert settings(SERVER_WALLET_GAS_LEASE_SECS="31", SIDECAR_HTTP_TIMEOUT_SECS="10").gas_lease_seconds == 31

    def test_decryption_without_workers_or_cache(self):
        parsed = settings(SEAL_DECRYPT_WORKERS="0", SEAL_KEY_CACHE_ENTRIES="0")
        assert (parsed.seal_decrypt_workers, parsed.seal_key_cache_entries) == (0, 0)

    def test_protocol_endpoints(self):
        assert settings(SUI_PROTOCOL="jsonrpc").sui_url == "http://sui"
        assert settings(SUI_PROTOCOL="grpc", SUI_GRPC_URL="http://grpc:9000").sui_url == "http://grpc:9000"

    def test_network_preset_fills_what_is_unset(self):
        bare = {name: value for name, value in VALID.items() if not name.startswith(("SUI_", "WALRUS_", "SEAL_"))}
        parsed = SidecarSettings.from_environ({**bare, "SUI_NETWORK": "testnet", "WALRUS_PACKAGE_ID": "0x9"})
        assert (parsed.sui_protocol, parsed.sui_url) == ("graphql", TESTNET.sui_graphql_url)
        assert parsed.walrus_publisher_url == TESTNET.walrus_publisher_url
        assert parsed.walrus_package_id == "0x9"  # explicit wins
        assert [server.object_id for server in parsed.seal_servers] == [server.object_id for server in TESTNET.seal_servers]

    @pytest.mark.parametrize("overrides,match", [
        ({"SEAL_THRESHOLD": "4"}, "total weight 3"), ({"WALRUS_MAX_BLOB_BYTES": str(MAX_DATA_BYTES + 1)}, "protocol's cap"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"), ({"SUI_PROTOCOL": "websocket"}, "SUI_PROTOCOL"),
        ({"SUI_PROTOCOL": "grpc"}, "SUI_GRPC_URL"),
        ({"SIDECAR_AUTH_TOKEN": "short"}, "32 characters"), ({"SIDECAR_MAX_REQUEST_BYTES": "10"}, ">= 65536"),
        ({"SEAL_DECRYPT_WORKERS": "257"}, "at most 256"), ({"SEAL_DECRYPT_WORKERS": "-1"}, "SEAL_DECRYPT_WORKERS"),
        ({"SEAL_KEY_CACHE_ENTRIES": "100001"}, "at most 100000"),
        ({"SERVER_WALLET_GAS_LEASE_SECS": "90"}, "exceed 3 × SIDECAR_HTTP_TIMEOUT_SECS"),
        ({"SIDECAR_HTTP_TIMEOUT_SECS": "40"}, "SERVER_WALLET_GAS_LEASE_SECS must exceed"),
    ])
    def test_invalid(self, overrides, match):
        with pytest.raises(SettingsError, match=match):
            settings(**overrides)
