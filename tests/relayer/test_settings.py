"""relayer.settings + memwal_common.environment/secret/shared_settings: defaults, parsing, validate(), redaction,
limits with units, the settings shared with the sidecar and enclave, and README coverage of every variable."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from attestation.provisioning import PROVISIONABLE_SECRETS
from memwal_common.environment import SettingsError, env_flag, env_int, parse_csv, parse_seal_servers
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
from relayer.settings import GIB, MAINNET_WALRUS_PACKAGE_ID, TESTNET_WALRUS_PACKAGE_ID, Settings

VALID = {
    "MEMWAL_PACKAGE_ID": "0x1", "MEMWAL_REGISTRY_ID": "0x2", "SUI_RPC_URL": "http://sui",
    "WALRUS_PUBLISHER_URL": "http://pub/", "WALRUS_AGGREGATOR_URLS": "http://a/, http://b",
    "SEAL_SERVER_CONFIGS": json.dumps([{"objectId": "0xa"}, {"objectId": "0xb", "weight": 2}]),
}


def settings(**overrides: str) -> Settings:
    env = {**VALID, **overrides}
    return Settings.from_environ({k: v for k, v in env.items() if v is not None})


class TestSettingsValidate:
    @pytest.mark.parametrize("name,match", [
        ("MEMWAL_PACKAGE_ID", "MEMWAL_PACKAGE_ID is required"), ("MEMWAL_REGISTRY_ID", "MEMWAL_REGISTRY_ID is required"),
        ("SUI_RPC_URL", "SUI_RPC_URL is required"), ("WALRUS_AGGREGATOR_URLS", "WALRUS_AGGREGATOR_URL"),
        ("WALRUS_PUBLISHER_URL", "WALRUS_PUBLISHER_URL is required"), ("SEAL_SERVER_CONFIGS", "at least one key server"),
    ])
    def test_required(self, name, match):
        with pytest.raises(SettingsError, match=match):
            settings(**{name: ""}).validate()

    @pytest.mark.parametrize("overrides,match", [
        ({"SUI_PROTOCOL": "grpc"}, "SUI_PROTOCOL"), ({"SUI_PROTOCOL": "graphql"}, "SUI_GRAPHQL_URL"),
        ({"WALRUS_STORAGE_EPOCHS": "6"}, "WALRUS_STORAGE_EPOCHS"), ({"WALRUS_STORAGE_EPOCHS": "0"}, "WALRUS_STORAGE_EPOCHS"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"), ({"SEAL_THRESHOLD": "4"}, "total weight 3"),
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
        assert (parsed.walrus_storage_epochs, parsed.walrus_package_id) == (3, MAINNET_WALRUS_PACKAGE_ID)
        assert not parsed.openai_api_key

    def test_network_dependent_defaults(self):
        parsed = settings(SUI_NETWORK="testnet")
        assert (parsed.walrus_storage_epochs, parsed.walrus_package_id) == (5, TESTNET_WALRUS_PACKAGE_ID)

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

    @pytest.mark.parametrize("protocol,url", [("jsonrpc", "http://sui"), ("graphql", "http://gql")])
    def test_one_sui_endpoint_choice_for_relayer_sidecar_and_indexer(self, protocol, url):
        env = {**VALID, "SUI_PROTOCOL": protocol, "SUI_GRAPHQL_URL": "http://gql"}
        assert Settings.from_environ(env).sui == sui_endpoint_from(env) == SuiEndpoint(protocol, url)

    def test_indexer_needs_only_its_subset(self):
        indexer = Settings.from_environ({"DATABASE_URL": "postgresql://x", "MEMWAL_PACKAGE_ID": "0x1", "SUI_RPC_URL": "http://s"})
        indexer.validate_indexer()
        with pytest.raises(SettingsError, match="DATABASE_URL"):
            Settings.from_environ({"MEMWAL_PACKAGE_ID": "0x1", "SUI_RPC_URL": "http://s"}).validate_indexer()
        with pytest.raises(SettingsError, match="SUI_GRAPHQL_URL is required"):
            Settings.from_environ({"DATABASE_URL": "x", "MEMWAL_PACKAGE_ID": "0x1", "SUI_PROTOCOL": "graphql"}).validate_indexer()

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
