"""``python -m relayer check`` (and the ``python -m sidecar check`` it runs) against the localnet: the effective
configuration with sources and secrets redacted, and each network check passing, failing or unreachable as
it should."""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
from pathlib import Path

import pytest

from devtools.processes import free_port
from localnet.environment import relayer_configuration, relayer_secrets
from localnet.object_store import GENESIS_CHECKPOINT_DIGEST
from memwal_common.config_report import redacted, setting_variables, worst
from memwal_common.networks import MAINNET
from relayer.check import check
from relayer.settings import Settings
from sealcrypto import KeyServerSecret
from sidecar.settings import SidecarSettings

pytestmark = pytest.mark.database

ROOT = Path(__file__).resolve().parents[2]
DATABASE_URL = "postgresql://memwal:hunter2-secret@db.internal:5432/memwal"


def environment(localnet, **overrides: str) -> dict[str, str]:
    """The process environment without any deployment variables, then the localnet's (the sidecar check is a
    child process: it needs PATH and friends)."""
    inherited = {key: value for key, value in os.environ.items()
                 if not key.startswith(("SUI_", "WALRUS_", "SEAL_", "MEMWAL_", "SERVER_SUI_", "SIDECAR_"))}
    return {**inherited, **relayer_configuration(localnet), **relayer_secrets(localnet), "DATABASE_URL": DATABASE_URL,
            **overrides}


async def run_check(env: dict[str, str], **kwargs) -> tuple[int, str]:
    out = io.StringIO()
    status = await check(env, out, **kwargs)
    return status, out.getvalue()


def result_line(output: str, what: str) -> str:
    return next(line for line in output.splitlines() if what in line and line.startswith("  ") and ":" in line
                and line.split()[0] in {"ok", "FAILED", "unreachable"})


class TestConfiguration:
    def test_every_settings_field_names_its_variable(self):
        for settings_class in (Settings, SidecarSettings):
            fields = set(settings_class.__dataclass_fields__)
            assert set(setting_variables(settings_class)) == fields

    async def test_printed_with_sources_and_nothing_secret(self, localnet):
        env = environment(localnet, SUI_NETWORK="testnet", SUI_GRAPHQL_URL=localnet["sui_graphql_url"])
        env.pop("WALRUS_STORAGE_EPOCHS", None)
        status, output = await run_check(env, offline=True)
        assert status == 0
        for secret in (*localnet["server_wallet_keys"], localnet["openai_api_key"], "hunter2-secret"):
            assert secret not in output
        lines = {line.split()[0]: line.split()[1:] for line in output.splitlines() if line.startswith("    ")}
        assert lines["SERVER_SUI_PRIVATE_KEYS"][0] == f"<{len(localnet['server_wallet_keys'])}"
        assert lines["OPENAI_API_KEY"] == ["<set>", "env"]
        assert lines["DATABASE_URL"][0] == "postgresql://memwal:****@db.internal:5432/memwal"
        assert lines["SUI_GRAPHQL_URL"] == [localnet["sui_graphql_url"], "env"]
        assert lines["WALRUS_STORAGE_EPOCHS"] == ["5", "preset:testnet"]  # filled by SUI_NETWORK
        assert lines["SUI_PROTOCOL"] == ["graphql", "env"]
        assert lines["SEAL_VERIFY_KEY_SERVERS"] == ["true", "default"]  # a sidecar setting
        assert lines["SUI_READ_LAG_TIMEOUT_SECS"] == ["30", "default"]
        assert lines["SEAL_KEY_SERVER_TIMEOUT_MS"] == ["25000", "default"]  # shown in the variable's unit

    def test_exit_status_of_both_parts(self):
        assert [worst(0, 0), worst(3, 0), worst(3, 1), worst(1, 2), worst(0, 3)] == [0, 3, 1, 2, 3]

    def test_redaction_rules(self):
        assert redacted("REDIS_URL", "redis://:pw@cache:6379/0") == "redis://:****@cache:6379/0"
        assert redacted("REDIS_URL", "redis://cache:6379/0") == "redis://cache:6379/0"
        assert redacted("SERVER_SUI_PRIVATE_KEY", ("a",)) == "<1 key>"

    async def test_invalid_configuration_is_status_2(self, localnet):
        status, output = await run_check(environment(localnet, SUI_PROTOCOL="grpc", SUI_GRPC_URL=""))
        assert (status, output.strip()) == (2, "configuration error: SUI_GRPC_URL is required when SUI_PROTOCOL=grpc")


class TestAgainstTheLocalnet:
    @pytest.mark.parametrize("protocol", ["graphql", "grpc", "jsonrpc"])
    async def test_every_check_passes(self, localnet, protocol):
        env = environment(localnet, SUI_PROTOCOL=protocol, SEAL_SERVER_CONFIGS=json.dumps([
            {"objectId": localnet["seal_key_servers"][0]["objectId"]},
            {"objectId": localnet["seal_committee"]["objectId"], "aggregatorUrl": localnet["seal_committee"]["aggregatorUrl"]}]),
            SEAL_THRESHOLD="2", SEAL_LEGACY_DECRYPT_KEY_SERVERS=localnet["seal_key_servers"][1]["objectId"])
        status, output = await run_check(env)
        assert status == 0, output
        assert "FAILED" not in output and "unreachable" not in output
        assert f"chain {GENESIS_CHECKPOINT_DIGEST[:4].hex()}" in result_line(output, "SUI_GRPC_URL")
        assert "package, version 1" in result_line(output, "MEMWAL_PACKAGE_ID")
        assert "committee 2-of-3, key consistent" in result_line(output, localnet["seal_committee"]["objectId"])
        assert "proof of possession verified" in result_line(output, localnet["seal_key_servers"][0]["objectId"])
        assert "gas coin" in result_line(output, "server wallet 0")
        assert "SEAL_LEGACY_DECRYPT_KEY_SERVERS" in result_line(output, localnet["seal_key_servers"][1]["objectId"])
        assert "relayer: 6 of 6 checks passed" in output  # three endpoints, package, registry, Walrus package
        assert "sidecar: 7 of 7 checks passed" in output  # three key servers, one wallet, publisher, two aggregators

    async def test_wrong_ids_fail(self, localnet):
        env = environment(localnet, MEMWAL_PACKAGE_ID=localnet["memwal_registry_id"],
                          MEMWAL_REGISTRY_ID="0x" + "ab" * 32)
        status, output = await run_check(env)
        assert status == 1
        assert "FAILED" in result_line(output, "MEMWAL_PACKAGE_ID") and "not a package's original id" in output
        assert "no such object" in result_line(output, "MEMWAL_REGISTRY_ID")

    async def test_a_key_server_that_does_not_hold_its_key_fails(self, localnet, http):
        forged = (await http.post(f"{localnet['admin_url']}/_localnet/key-servers", json={
            "name": "forged", "url": localnet["seal_key_servers"][0]["url"],
            "public_key": KeyServerSecret.generate().public_key.hex()})).json()["objectId"]
        status, output = await run_check(environment(localnet, SEAL_LEGACY_DECRYPT_KEY_SERVERS=forged))
        assert status == 1
        assert "does not prove it holds its on-chain key" in result_line(output, forged)

    async def test_a_committee_without_its_aggregator_url_fails(self, localnet):
        env = environment(localnet, SEAL_SERVER_CONFIGS=json.dumps([{"objectId": localnet["seal_committee"]["objectId"]}]),
                          SEAL_THRESHOLD="1")
        status, output = await run_check(env)
        assert status == 1 and "needs its aggregatorUrl" in output

    async def test_the_wrong_network_fails(self, localnet):
        # SUI_NETWORK=mainnet with the localnet's endpoints: the chain is not mainnet's.
        status, output = await run_check(environment(localnet, SUI_NETWORK="mainnet"))
        assert status == 1
        assert f"but SUI_NETWORK=mainnet is chain {MAINNET.chain_identifier}" in result_line(output, "SUI_GRAPHQL_URL")

    async def test_an_unreachable_endpoint_is_status_3(self, localnet):
        dead = f"http://127.0.0.1:{free_port()}"
        status, output = await run_check(environment(localnet, WALRUS_AGGREGATOR_URLS=f"{localnet['walrus_aggregator_urls'][0]},{dead}"))
        assert status == 3, output
        assert result_line(output, dead).split()[0] == "unreachable"


async def test_the_command_line(localnet):
    env = environment(localnet)
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "relayer", "check", env=env, cwd=ROOT,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    stdout, _ = await asyncio.wait_for(process.communicate(), 60)  # the localnet serves from this event loop
    output = stdout.decode()
    assert process.returncode == 0, output
    assert "checks passed" in output and localnet["server_wallet_keys"][0] not in output
