"""relayer.settings + memwal_common.environment/secret/shared_settings: defaults, parsing, validate(), redaction,
limits with units, the settings shared with the sidecar and enclave, and README coverage of every variable."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from attestation.provisioning import PROVISIONABLE_SECRETS
from memwal_common.environment import SettingsError, env_flag, env_int, parse_csv, parse_seal_servers
from memwal_common.networks import MAINNET, TESTNET
from memwal_common.secret import Secret
from memwal_common.shared_settings import (
    SECRET_VARIABLES,
    SIDECAR_SECRET_VARIABLES,
    WALLET_KEY_VARIABLES,
    SuiEndpoint,
    default_seal_threshold,
    seal_threshold,
    sui_endpoint_from,
)
from relayer.serve import hypercorn_config
from relayer.settings import GIB, Settings

VALID = {
    "MEMWAL_PACKAGE_ID": "0x1", "MEMWAL_REGISTRY_ID": "0x2", "SUI_RPC_URL": "http://sui", "SUI_GRAPHQL_URL": "http://sui/graphql",
    "WALRUS_PUBLISHER_URL": "http://pub/", "WALRUS_AGGREGATOR_URLS": "http://a/, http://b",
    "SEAL_SERVER_CONFIGS": json.dumps([{"objectId": "0xa"}, {"objectId": "0xb", "weight": 2}]),
}


def settings(**overrides: str) -> Settings:
    env = {**VALID, **overrides}
    return Settings.from_environ({k: v for k, v in env.items() if v is not None})


class TestSettingsValidate:
    @pytest.mark.parametrize("name,match", [
        ("MEMWAL_PACKAGE_ID", "MEMWAL_PACKAGE_ID is required"), ("MEMWAL_REGISTRY_ID", "MEMWAL_REGISTRY_ID is required"),
        ("WALRUS_AGGREGATOR_URLS", "WALRUS_AGGREGATOR_URL"),
        ("WALRUS_PUBLISHER_URL", "WALRUS_PUBLISHER_URL is required"), ("SEAL_SERVER_CONFIGS", "at least one key server"),
    ])
    def test_required(self, name, match):
        with pytest.raises(SettingsError, match=match):
            settings(SUI_NETWORK="localnet", WALRUS_PACKAGE_ID="0x3", **{name: ""}).validate()

    @pytest.mark.parametrize("protocol,variable", [("graphql", "SUI_GRAPHQL_URL"), ("grpc", "SUI_GRPC_URL"),
                                                   ("jsonrpc", "SUI_RPC_URL")])
    def test_each_protocol_needs_its_url(self, protocol, variable):
        with pytest.raises(SettingsError, match=f"{variable} is required when SUI_PROTOCOL={protocol}"):
            settings(SUI_NETWORK="localnet", WALRUS_PACKAGE_ID="0x3", SUI_PROTOCOL=protocol, **{variable: ""}).validate()

    @pytest.mark.parametrize("overrides,match", [
        ({"SUI_PROTOCOL": "rest"}, "SUI_PROTOCOL"),
        ({"WALRUS_STORAGE_EPOCHS": "6"}, "WALRUS_STORAGE_EPOCHS"), ({"WALRUS_STORAGE_EPOCHS": "0"}, "WALRUS_STORAGE_EPOCHS"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"), ({"SEAL_THRESHOLD": "4"}, "total weight 3"),
        ({"OAUTH_ISSUER_URL": "http://relayer.example"}, "OAUTH_ISSUER_URL must be an https URL"),
        ({"OAUTH_ISSUER_URL": "https://relayer.example/oauth"}, "without a path"),
        ({"OAUTH_ACCESS_TOKEN_TTL_SECS": "86401"}, "OAUTH_ACCESS_TOKEN_TTL_SECS"),
        ({"OAUTH_REFRESH_TOKEN_TTL_SECS": "7776001"}, "OAUTH_REFRESH_TOKEN_TTL_SECS"),
    ])
    def test_invalid(self, overrides, match):
        with pytest.raises(SettingsError, match=match):
            settings(**overrides).validate()

    @pytest.mark.parametrize("name,value,match", [
        ("PORT", "x", "PORT must be an integer"), ("RATE_LIMIT_REQUESTS_PER_MINUTE", "0", ">= 1"),
        ("JOB_LEASE_SECS", "4", ">= 5"), ("MAX_BODY_BYTES", "10", ">= 1024"),
    ])
    def test_bad_integers_fail_at_parse(self, name, value, match):
        with pytest.raises(SettingsError, match=match):
            settings(**{name: value})

    def test_oauth_issuer(self):
        settings(OAUTH_ISSUER_URL="https://relayer.example").validate()
        settings(OAUTH_ISSUER_URL="http://127.0.0.1:8000").validate()  # loopback may be plain http (development)
        assert settings().oauth_issuer_url == ""  # OAuth off by default

    def test_defaults(self):
        parsed = settings()
        parsed.validate()
        assert parsed.bind == "127.0.0.1:8000"
        assert (parsed.rate_limit_per_minute, parsed.rate_limit_per_hour, parsed.rate_limit_delegate_per_minute) == (60, 500, 30)
        assert parsed.storage_quota_bytes == GIB and parsed.max_body_bytes == 2 * 1024 * 1024
        assert parsed.clock_drift_seconds == 300 and parsed.rate_limit_disabled is False
        assert parsed.walrus_aggregator_urls == ("http://a", "http://b")
        assert parsed.walrus_publisher_url == "http://pub"
        assert parsed.effective_seal_threshold == 2
        assert (parsed.walrus_storage_epochs, parsed.walrus_package_id) == (3, MAINNET.walrus_package_id)
        assert (parsed.sui_protocol, parsed.sui.url) == ("graphql", "http://sui/graphql")  # GraphQL by default
        assert parsed.public_sui_rpc_url == "http://sui"
        assert not parsed.openai_api_key

    def test_network_presets_fill_what_is_unset(self):
        parsed = Settings.from_environ({"SUI_NETWORK": "testnet"})
        parsed.validate()
        assert (parsed.walrus_storage_epochs, parsed.walrus_package_id) == (5, TESTNET.walrus_package_id)
        assert (parsed.package_id, parsed.registry_id) == (TESTNET.memwal_package_id, TESTNET.memwal_registry_id)
        assert parsed.sui.url == TESTNET.sui_graphql_url and parsed.sui_grpc_url == TESTNET.sui_grpc_url
        assert parsed.walrus_publisher_url == TESTNET.walrus_publisher_url
        assert parsed.walrus_aggregator_urls == TESTNET.walrus_aggregator_urls
        assert parsed.seal_servers == TESTNET.seal_servers and parsed.effective_seal_threshold == 2
        assert parsed.sui_rpc_url == "" and parsed.public_sui_rpc_url == ""  # JSON-RPC has no preset
        on_grpc = Settings.from_environ({"SUI_NETWORK": "mainnet", "SUI_PROTOCOL": "grpc"})
        assert on_grpc.sui.url == MAINNET.sui_grpc_url and on_grpc.registry_id == MAINNET.memwal_registry_id

    def test_explicit_variables_win_over_the_preset(self):
        parsed = Settings.from_environ({"SUI_NETWORK": "testnet", "MEMWAL_PACKAGE_ID": "0x77",
                                        "WALRUS_AGGREGATOR_URL": "http://mine", "SUI_GRAPHQL_URL": "http://gql",
                                        "SEAL_SERVER_CONFIGS": '[{"objectId": "0xc", "aggregatorUrl": "http://agg"}]',
                                        "SEAL_LEGACY_DECRYPT_KEY_SERVERS": "0xa, 0xB"})
        assert (parsed.package_id, parsed.walrus_aggregator_urls, parsed.sui.url) == ("0x77", ("http://mine",), "http://gql")
        assert [server.aggregator_url for server in parsed.seal_servers] == ["http://agg"]
        assert parsed.effective_seal_threshold == 1  # one committee: the aggregator keeps the committee's threshold
        assert [server.object_id for server in parsed.seal_legacy_decrypt_servers] == [
            "0x" + "0" * 63 + "a", "0x" + "0" * 63 + "b"]

    def test_no_preset_for_custom_networks(self):
        parsed = Settings.from_environ({"SUI_NETWORK": "localnet"})
        assert (parsed.package_id, parsed.sui.url, parsed.walrus_package_id, parsed.seal_servers) == ("", "", "", ())
        with pytest.raises(SettingsError, match="MEMWAL_PACKAGE_ID is required"):
            parsed.validate()

    @pytest.mark.parametrize("raw", ["0xnope", "0x1,0x1", "x" * 70_000])
    def test_bad_legacy_key_server_lists(self, raw):
        with pytest.raises(SettingsError, match="SEAL_LEGACY_DECRYPT_KEY_SERVERS"):
            Settings.from_environ({**VALID, "SEAL_LEGACY_DECRYPT_KEY_SERVERS": raw})

    def test_port_and_flags(self):
        parsed = settings(PORT="9001", RATE_LIMIT_DISABLED="true", WALRUS_AGGREGATOR_URLS="", WALRUS_AGGREGATOR_URL="http://one")
        assert parsed.bind == "127.0.0.1:9001" and parsed.rate_limit_disabled
        assert parsed.walrus_aggregator_urls == ("http://one",)

    def test_secrets_never_print(self):
        parsed = settings(OPENAI_API_KEY="sk-very-secret", SIDECAR_AUTH_TOKEN="tok-secret")
        assert "sk-very-secret" not in repr(parsed) and "tok-secret" not in repr(parsed)
        assert parsed.openai_api_key.reveal() == "sk-very-secret"


class TestEnvironmentHelpers:
    @pytest.mark.parametrize("raw,match", [
        ("{}", "JSON array"), ("not json", "JSON array"), ('[{"weight": 1}]', "objectId"),
        ('[{"objectId": "0x1", "weight": 0}]', "1..255"), ('[{"objectId": "0x1", "weight": true}]', "1..255"),
        ("[" + " " * 70_000 + "]", "too large"),
    ])
    def test_seal_server_configs_rejected(self, raw, match):
        with pytest.raises(SettingsError, match=match):
            parse_seal_servers(raw)

    def test_seal_server_configs(self):
        [server] = parse_seal_servers('[{"objectId": "0x1", "weight": 3, "aggregatorUrl": "http://x"}]')
        assert (server.object_id, server.weight, server.aggregator_url) == ("0x1", 3, "http://x")
        assert parse_seal_servers("  ") == ()

    def test_env_int_and_flags_and_csv(self):
        assert env_int({"A": " "}, "A", 4) == 4
        with pytest.raises(SettingsError, match="A must be >= 2, got 1"):
            env_int({"A": "1"}, "A", 4, minimum=2)
        assert [env_flag(v) for v in ("1", "TRUE", "yes", "on", "0", "", None, "nope")] == [True] * 4 + [False] * 4
        assert parse_csv(" a, ,b ,") == ("a", "b")


class TestSecret:
    def test_repr_and_str_are_redacted(self):
        secret = Secret("hunter2")
        assert "hunter2" not in repr(secret) and "hunter2" not in str(secret) and "hunter2" not in f"{secret}"

    def test_matches_and_equality(self):
        secret = Secret("hunter2")
        assert secret.matches("hunter2") and not secret.matches("hunter3") and not secret.matches("")
        assert secret == Secret("hunter2") and secret != Secret("x") and secret != "hunter2"
        assert not Secret("") and Secret("x")


class TestLimitsAndSharedSettings:
    def test_limit_defaults_with_units(self):
        parsed = settings()
        assert (parsed.graceful_timeout_seconds, parsed.keep_alive_timeout_seconds, parsed.max_request_head_bytes) == (10, 30, 16384)
        assert (parsed.redis_timeout_seconds, parsed.sui_timeout_seconds, parsed.retry_after_seconds) == (2, 15, 5)
        assert (parsed.sidecar_timeout_seconds, parsed.sidecar_connect_timeout_seconds, parsed.sidecar_health_timeout_seconds) == (120, 5, 2)
        assert (parsed.database_connect_timeout_seconds, parsed.database_command_timeout_seconds) == (10, 30)
        assert parsed.sidecar_max_reply_bytes == 256 * 1024 * 1024 and parsed.indexer_poll_seconds == 5

    def test_hypercorn_takes_its_limits_from_settings(self):
        config = hypercorn_config("9000", settings(GRACEFUL_TIMEOUT_SECS="3", KEEP_ALIVE_TIMEOUT_SECS="7",
                                                   MAX_REQUEST_HEAD_BYTES="4096"))
        assert config.bind == ["127.0.0.1:9000"]
        assert (config.graceful_timeout, config.keep_alive_timeout, config.h11_max_incomplete_size) == (3, 7, 4096)

    @pytest.mark.parametrize("protocol,url", [("jsonrpc", "http://sui"), ("graphql", "http://gql"), ("grpc", "http://grpc:9")])
    @pytest.mark.parametrize("network", ["mainnet", "localnet"])
    def test_one_sui_endpoint_choice_for_relayer_sidecar_and_indexer(self, protocol, url, network):
        env = {**VALID, "SUI_NETWORK": network, "SUI_PROTOCOL": protocol, "SUI_GRAPHQL_URL": "http://gql",
               "SUI_GRPC_URL": "http://grpc:9"}
        assert Settings.from_environ(env).sui == sui_endpoint_from(env) == SuiEndpoint(protocol, url)

    def test_indexer_needs_only_its_subset(self):
        localnet = {"SUI_NETWORK": "localnet", "MEMWAL_PACKAGE_ID": "0x1", "SUI_GRAPHQL_URL": "http://s"}
        Settings.from_environ({**localnet, "DATABASE_URL": "postgresql://x"}).validate_indexer()
        with pytest.raises(SettingsError, match="DATABASE_URL"):
            Settings.from_environ(localnet).validate_indexer()
        with pytest.raises(SettingsError, match="SUI_RPC_URL is required"):
            Settings.from_environ({**localnet, "DATABASE_URL": "x", "SUI_PROTOCOL": "jsonrpc"}).validate_indexer()

    def test_seal_threshold_default_is_shared(self):
        servers = parse_seal_servers(VALID["SEAL_SERVER_CONFIGS"])
        assert settings().effective_seal_threshold == default_seal_threshold(servers) == 2
        assert seal_threshold({"SEAL_THRESHOLD": "3"}, servers) == settings(SEAL_THRESHOLD="3").effective_seal_threshold == 3

    def test_secret_names_match_what_an_enclave_accepts_by_provisioning(self):
        # attestation/ imports nothing of ours, so it keeps its own copy; this pins the two together.
        assert SECRET_VARIABLES == PROVISIONABLE_SECRETS
        assert set(WALLET_KEY_VARIABLES) < set(SIDECAR_SECRET_VARIABLES) < SECRET_VARIABLES


ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("module", ["relayer/settings.py", "sidecar/settings.py"])
def test_every_setting_is_in_the_readme_configuration_table(module):
    names = set(re.findall(r"#\s+([A-Z][A-Z0-9_]{2,})\b", (ROOT / module).read_text(encoding="utf-8")))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("## Configuration"):readme.index("## Threat model")]
    assert names and sorted(name for name in names if f"`{name}`" not in table) == []
