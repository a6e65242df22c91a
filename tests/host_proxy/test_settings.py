from __future__ import annotations

import dataclasses
import json

import pytest

from host_proxy.addresses import TcpEndpoint, VsockEndpoint
from host_proxy.errors import AddressError, ConfigurationError
from host_proxy.settings import (
    KIB,
    MAX_CONFIG_FILE_BYTES,
    MAX_READ_CHUNK_BYTES,
    Limits,
    Settings,
    load_settings_file,
    parse_rule,
    settings_from_mapping,
)

INGRESS = {"listen": "tcp:0.0.0.0:443", "target": "vsock:16:443"}
EGRESS = {"listen": "vsock:ANY:8101", "target": "tcp:api.openai.com:443"}


class TestInvalid:
    @pytest.mark.parametrize(
        ("data", "match"),
        [
            ({}, "no routes"),
            ({"ingress": [INGRESS], "colour": 1}, "unknown key.*'colour'"),
            ({"ingress": INGRESS}, "must be a list"),
            ({"ingress": [{"listen": "tcp:0.0.0.0:443"}]}, "listen and target are required"),
            ({"ingress": [dict(INGRESS, port=1)]}, r"ingress\[0\]: unknown key"),
            ({"egress": [{"listen": "vsock:ANY:8101", "target": "vsock:3:1"}]}, "allowlisted tcp:HOST:PORT"),
            ({"egress": [{"listen": "tcp:0.0.0.0:8101", "target": "tcp:a:443"}]}, "never a public TCP"),
            ({"egress": [{"listen": "tcp:10.0.0.5:8101", "target": "tcp:a:443"}]}, "never a public TCP"),
            ({"ingress": [{"listen": "tcp:0.0.0.0:443", "target": "tcp:10.0.0.1:443"}]}, "the target is the enclave"),
            ({"ingress": [{"listen": "tcp:0.0.0.0:443", "target": "tcp:example.com:443"}]}, "the target is the enclave"),
            ({"ingress": [{"listen": "tcp:0.0.0.0:443", "target": "vsock:16:0"}]}, "target port 0"),
            ({"ingress": [INGRESS, dict(INGRESS, target="vsock:17:443")]}, "used by two routes"),
            ({"ingress": [INGRESS], "limits": {"max_connections": 0}}, "max_connections must be at least 1"),
            ({"ingress": [INGRESS], "limits": {"read_chunk_bytes": MAX_READ_CHUNK_BYTES + 1}}, "read_chunk_bytes"),
            ({"ingress": [INGRESS], "limits": {"connect_timeout_seconds": 0}}, "connect_timeout_seconds must be > 0"),
            ({"ingress": [INGRESS], "limits": {"idle_timeout_seconds": -1}}, "idle_timeout_seconds"),
            ({"ingress": [INGRESS], "limits": {"max_connections": "10"}}, "must be an integer"),
            ({"ingress": [INGRESS], "limits": {"max_connections": True}}, "must be an integer"),
            ({"ingress": [INGRESS], "limits": {"idle_timeout_seconds": "5m"}}, "a number of seconds"),
            ({"ingress": [INGRESS], "limits": {"idle": 5}}, "limits: unknown key"),
            ({"ingress": [INGRESS], "metrics": "vsock:ANY:9100"}, "not vsock"),
            ({"ingress": [INGRESS], "metrics": 9100}, "endpoint string"),
        ],
    )
    def test_rejected_with_a_clear_message(self, data, match):
        with pytest.raises(ConfigurationError, match=match):
            settings_from_mapping(data).validate()

    def test_bad_endpoint_names_the_rule(self):
        with pytest.raises(AddressError, match=r"ingress rule 'tcp:0.0.0.0:443=vsock:x:1'.*CID"):
            parse_rule("ingress", "tcp:0.0.0.0:443=vsock:x:1")

    @pytest.mark.parametrize("text", ["tcp:0.0.0.0:443", "=vsock:16:443", "tcp:0.0.0.0:443="])
    def test_rule_needs_listen_and_target(self, text):
        with pytest.raises(ConfigurationError, match="expected LISTEN=TARGET"):
            parse_rule("ingress", text)


class TestValid:
    def test_full_config(self):
        settings = settings_from_mapping(
            {
                "ingress": [dict(INGRESS, name="https")],
                "egress": [EGRESS, {"listen": "vsock:ANY:8102", "target": "tcp:fullnode.mainnet.sui.io:443"}],
                "limits": {"max_connections": 10, "idle_timeout_seconds": 30, "read_chunk_bytes": 16 * KIB},
                "metrics": "tcp:127.0.0.1:9100",
            }
        )
        settings.validate()
        assert [route.label for route in settings.routes] == ["https", "egress:vsock:ANY:8101", "egress:vsock:ANY:8102"]
        assert settings.routes[0].target == VsockEndpoint(16, 443)
        assert settings.egress_allowlist == (TcpEndpoint("api.openai.com", 443), TcpEndpoint("fullnode.mainnet.sui.io", 443))
        assert settings.limits == Limits(max_connections=10, idle_timeout_seconds=30.0, read_chunk_bytes=16 * KIB)
        assert settings.metrics == TcpEndpoint("127.0.0.1", 9100)

    def test_settings_are_frozen(self):
        with pytest.raises(dataclasses.FrozenInstanceError):
            Settings().limits.max_connections = 5  # type: ignore[misc]

    def test_buffer_bound_follows_the_limits(self):
        small = Limits(read_chunk_bytes=4 * KIB, write_buffer_bytes=4 * KIB)
        assert small.max_buffered_bytes_per_direction < Limits().max_buffered_bytes_per_direction


class TestConfigFile:
    def test_loads_json(self, tmp_path):
        path = tmp_path / "proxy.json"
        path.write_text(json.dumps({"ingress": [INGRESS]}))
        assert load_settings_file(path).routes[0].listen == TcpEndpoint("0.0.0.0", 443)

    def test_missing_file(self, tmp_path):
        with pytest.raises(ConfigurationError, match="cannot read config"):
            load_settings_file(tmp_path / "absent.json")

    def test_not_json(self, tmp_path):
        path = tmp_path / "proxy.json"
        path.write_text("ingress = []")
        with pytest.raises(ConfigurationError, match="is not valid JSON"):
            load_settings_file(path)

    def test_errors_name_the_file(self, tmp_path):
        path = tmp_path / "proxy.json"
        path.write_text(json.dumps({"ingress": [{"listen": "tcp:0.0.0.0:443", "target": "vsock:16"}]}))
        with pytest.raises(AddressError, match=r"config .*proxy.json: ingress rule"):
            load_settings_file(path)

    def test_oversized_file(self, tmp_path):
        path = tmp_path / "proxy.json"
        path.write_bytes(b" " * (MAX_CONFIG_FILE_BYTES + 1))
        with pytest.raises(ConfigurationError, match="larger than"):
            load_settings_file(path)
