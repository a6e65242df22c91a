"""sidecar.settings: the same Sui endpoint and Seal threshold rules as the relayer, limits with units, and caps
that keep the settings inside the protocol's bounds."""

from __future__ import annotations

import json

import pytest

from memwal_common.environment import SettingsError
from sidecar.protocol import MAX_DATA_BYTES
from sidecar.settings import SidecarSettings

VALID = {
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
        assert (parsed.sui_protocol, parsed.sui_url, parsed.seal_threshold) == ("jsonrpc", "http://sui", 2)
        assert (parsed.max_request_bytes, parsed.http_timeout_seconds, parsed.redis_timeout_seconds) == (4 * 1024 * 1024, 30, 2)
        assert (parsed.graceful_timeout_seconds, parsed.http_max_connections, parsed.log_format) == (10, 64, "pretty")
        assert "t" * 32 not in repr(parsed)

    def test_graphql_endpoint(self):
        assert settings(SUI_PROTOCOL="graphql").sui_url == "http://gql"

    @pytest.mark.parametrize("overrides,match", [
        ({"SEAL_THRESHOLD": "4"}, "total weight 3"), ({"WALRUS_MAX_BLOB_BYTES": str(MAX_DATA_BYTES + 1)}, "protocol's cap"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"), ({"SUI_PROTOCOL": "grpc"}, "SUI_PROTOCOL"),
        ({"SIDECAR_AUTH_TOKEN": "short"}, "32 characters"), ({"SIDECAR_MAX_REQUEST_BYTES": "10"}, ">= 65536"),
    ])
    def test_invalid(self, overrides, match):
        with pytest.raises(SettingsError, match=match):
            settings(**overrides)
