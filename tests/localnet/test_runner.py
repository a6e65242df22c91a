"""The localnet runner: one HTTP server per stand-in, persisted state, localnet.json, and the CLI."""

import contextlib
import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import nacl.signing
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from chain.address import sui_address
from chain.backends import make_chain_reader
from chain.keys import decode_sui_private_key
from chain.personal_message import sign_personal_message
from chain.reader import CommitteeServer
from localnet import cli
from localnet.environment import relayer_configuration
from localnet.errors import AdminRequestFailed, LocalnetError, StateError
from localnet.runner import account_lookup, load_or_create_secrets, read_localnet_info, run_localnet, serving
from localnet.seal_policy import AccountView
from localnet.world import World
from sealcrypto import (
    EncryptedObject,
    KeyServerClient,
    KeyServerEndpoint,
    KeyServerPublic,
    SessionKey,
    build_seal_approve_ptb,
    decrypt_objects,
    encrypt,
)

REPOSITORY = Path(__file__).resolve().parents[2]


def counting_rng():
    counter = iter(range(1, 1_000_000))
    return lambda size: bytes([next(counter) % 251 + 1]) * size


def hello_app():
    async def hello(request):
        return PlainTextResponse("hello")

    return Starlette(routes=[Route("/", hello)])


class TestServing:
    async def test_serves_then_releases_the_port(self):
        async with serving(hello_app(), name="hello") as url:
            async with httpx.AsyncClient() as http:
                assert (await http.get(url)).text == "hello"
        async with httpx.AsyncClient() as http:
            with pytest.raises(httpx.ConnectError):
                await http.get(url)

    async def test_startup_failure_is_reported(self):
        @contextlib.asynccontextmanager
        async def broken_lifespan(app):
            raise RuntimeError("cannot start")
            yield  # pragma: no cover

        app = Starlette(lifespan=broken_lifespan)
        with pytest.raises(LocalnetError, match="failed to start"):
            async with serving(app, name="broken"):
                pass  # pragma: no cover


class TestSecrets:
    def test_created_private_and_reused(self, tmp_path):
        first = load_or_create_secrets(tmp_path, 2, os.urandom)
        assert stat.S_IMODE((tmp_path / "secrets.json").stat().st_mode) == 0o600
        again = load_or_create_secrets(tmp_path, 2, os.urandom)
        assert again.server_wallet_keys == first.server_wallet_keys and len(first.server_wallet_keys) == 1
        assert again.seal_master_keys == first.seal_master_keys and len(first.seal_master_keys) == 2
        assert again.openai_api_key == first.openai_api_key

    def test_more_key_servers_keep_the_old_keys(self, tmp_path):
        first = load_or_create_secrets(tmp_path, 1, os.urandom)
        more = load_or_create_secrets(tmp_path, 3, os.urandom)
        assert more.seal_master_keys[:1] == first.seal_master_keys and len(more.seal_master_keys) == 3

    def test_more_wallets_keep_the_old_ones(self, tmp_path):
        first = load_or_create_secrets(tmp_path, 1, os.urandom)
        more = load_or_create_secrets(tmp_path, 1, os.urandom, server_wallets=3)
        assert more.server_wallet_keys[:1] == first.server_wallet_keys and len(set(more.server_wallet_keys)) == 3

    def test_single_wallet_file_of_earlier_versions_is_read(self, tmp_path):
        key = load_or_create_secrets(tmp_path, 1, os.urandom).server_wallet_keys[0]
        (tmp_path / "secrets.json").write_text(json.dumps({"server_wallet_key": key}))
        assert load_or_create_secrets(tmp_path, 1, os.urandom).server_wallet_keys == (key,)

    def test_repr_is_redacted(self, tmp_path):
        secrets = load_or_create_secrets(tmp_path, 1, os.urandom)
        assert secrets.server_wallet_keys[0] not in repr(secrets) and "redacted" in repr(secrets)

    @pytest.mark.parametrize("content", ['{"server_wallet_key": "suiprivkey1broken"}', '{"server_wallet_keys": [1]}',
                                         "[1, 2]", "{not json"])
    def test_malformed_file(self, tmp_path, content):
        (tmp_path / "secrets.json").write_text(content)
        with pytest.raises(StateError, match="secrets.json"):
            load_or_create_secrets(tmp_path, 1, os.urandom)


class TestReadLocalnetInfo:
    def test_missing(self, tmp_path):
        with pytest.raises(StateError, match="is the localnet running"):
            read_localnet_info(tmp_path)

    def test_oversized(self, tmp_path):
        (tmp_path / "localnet.json").write_text("{" + " " * (1024 * 1024) + "}")
        with pytest.raises(StateError, match="exceeds"):
            read_localnet_info(tmp_path)


class TestAccountLookup:
    async def test_reads_accounts_from_the_world(self):
        world = World()
        world.publish_memwal_package()
        owner = "0x" + "11" * 32
        account_id = world.create_account(owner)
        delegate = bytes(nacl.signing.SigningKey(bytes(range(32))).verify_key)
        world.add_delegate_key(account_id, delegate, "phone")
        lookup = account_lookup(world)
        assert await lookup(account_id) == AccountView(account_id, owner, True, (sui_address(delegate),))
        world.set_active(account_id, False)
        assert (await lookup(account_id)).active is False

    async def test_other_objects_are_not_accounts(self):
        world = World()
        world.publish_memwal_package()
        registry_id = world.create_registry()
        coin_id = world.fund("0x" + "22" * 32, 5)
        lookup = account_lookup(world)
        assert await lookup(registry_id) is None
        assert await lookup(coin_id) is None
        assert await lookup("0x" + "33" * 32) is None


class TestCreateAccountErrors:
    async def test_unreachable_localnet(self):
        async with serving(hello_app(), name="gone") as url:
            pass
        with pytest.raises(AdminRequestFailed, match="did not answer"):
            await cli.create_account({"sui_rpc_url": url})

    async def test_refused_request(self):
        async with serving(hello_app(), name="no-admin") as url:
            with pytest.raises(AdminRequestFailed, match="405|404") as caught:
                await cli.create_account({"sui_rpc_url": url})
        assert caught.value.status in (404, 405)

    def test_repr_hides_private_keys(self):
        account = cli.CreatedAccount("0x1", "0x2", "0x3", "ab", "l", "suiprivkey1secret", "cd" * 32)
        assert "suiprivkey1secret" not in repr(account) and "cd" * 32 not in repr(account)
        assert f"key={'cd' * 32!r}" in account.sdk_snippet()


@pytest.mark.slow
class TestRunLocalnet:
    async def test_rejects_an_impossible_threshold(self, tmp_path):
        with pytest.raises(ValueError, match="threshold"):
            async with run_localnet(tmp_path, key_servers=1, threshold=2):
                pass  # pragma: no cover

    async def test_start_restart_and_create_account(self, tmp_path):
        async with run_localnet(tmp_path, key_servers=2, threshold=2) as info:
            written = json.loads((tmp_path / "localnet.json").read_text())
            assert written == info
            assert stat.S_IMODE((tmp_path / "localnet.json").stat().st_mode) == 0o600
            assert info["sui_network"] == "localnet" and info["seal_threshold"] == 2
            assert len(info["walrus_aggregator_urls"]) == 2 and len(info["seal_key_servers"]) == 2
            async with httpx.AsyncClient(timeout=10) as http:
                await self._check_servers(http, info)
                account = await cli.create_account(info, "laptop", http=http)
                await self._check_account(http, info, account)
                stored = await http.put(info["walrus_publisher_url"] + "/v1/blobs?send_object_to="
                                        + account.owner_address, content=b"persist me")
                blob_id = stored.json()["newlyCreated"]["blobObject"]["blobId"]
                reader = make_chain_reader(info["sui_rpc_url"], protocol="jsonrpc", http=http)
                owned = await reader.owned_blobs(account.owner_address, info["walrus_package_id"])
                assert [(blob.object_id, blob.blob_id) for blob in owned] == [
                    (stored.json()["newlyCreated"]["blobObject"]["id"], blob_id)]
        async with run_localnet(tmp_path, key_servers=3, threshold=2) as again:
            for key in ("memwal_package_id", "memwal_registry_id", "walrus_package_id", "server_wallet_keys",
                        "openai_api_key"):
                assert again[key] == info[key]
            assert [server["objectId"] for server in again["seal_key_servers"][:2]] == [
                server["objectId"] for server in info["seal_key_servers"]]
            assert again["seal_committee"]["objectId"] == info["seal_committee"]["objectId"]
            async with httpx.AsyncClient(timeout=10) as http:
                await self._check_servers(http, again)
                reader = make_chain_reader(again["sui_graphql_url"], protocol="graphql", http=http)
                shapes = []
                for server in again["seal_key_servers"]:  # V1 only, V1 upgraded to V2, V2 only
                    key_server = await reader.key_server(server["objectId"])
                    assert key_server.url == server["url"]
                    shapes.append(key_server.record_version)
                assert shapes == [1, 2, 2]
                committee = (await reader.key_server(again["seal_committee"]["objectId"])).server_type
                assert isinstance(committee, CommitteeServer) and committee.threshold == 2
                assert [member.url for member in committee.members] == [
                    member["url"] for member in again["seal_committee"]["members"]]
                read = await http.get(f"{again['walrus_aggregator_urls'][1]}/v1/blobs/{blob_id}")
                assert read.content == b"persist me"
                await self._check_account(http, again, account)

    async def test_key_servers_are_found_on_chain_without_the_last_localnet_json(self, tmp_path):
        # localnet.json is this run's output; a caller may delete it (make run does, to see the new one appear).
        # Re-registering would give the same keys new object ids and strand every ciphertext naming the old ones.
        async with run_localnet(tmp_path, key_servers=2, threshold=2) as info:
            first = [server["objectId"] for server in info["seal_key_servers"]], info["seal_committee"]["objectId"]
        (tmp_path / "localnet.json").unlink()
        async with run_localnet(tmp_path, key_servers=2, threshold=2) as again:
            assert ([server["objectId"] for server in again["seal_key_servers"]], again["seal_committee"]["objectId"]) == first

    async def test_a_network_without_json_rpc(self, tmp_path):
        async with run_localnet(tmp_path, key_servers=1, threshold=1, jsonrpc=False) as info:
            assert info["sui_rpc_url"] == "" and "sui-jsonrpc" not in info["servers"]
            async with httpx.AsyncClient(timeout=10) as http:
                account = await cli.create_account(info, "no-rpc", http=http)  # admin routes have their own port
                for protocol, url in (("graphql", info["sui_graphql_url"]), ("grpc", info["sui_grpc_url"])):
                    reader = make_chain_reader(url, protocol=protocol, http=http)
                    try:
                        found = await reader.get_account(account.account_id)
                    finally:
                        await reader.aclose()
                    assert found is not None and found.owner == account.owner_address
                assert relayer_configuration(info)["SUI_PROTOCOL"] == "graphql"
                assert relayer_configuration(info)["SUI_RPC_URL"] == ""

    async def test_seal_round_trip_through_the_key_servers(self, tmp_path):
        async with run_localnet(tmp_path, key_servers=3, threshold=2) as info:
            async with httpx.AsyncClient(timeout=10) as http:
                account = await cli.create_account(info, "agent", http=http)
                reader = make_chain_reader(info["sui_rpc_url"], protocol="jsonrpc", http=http)
                endpoints = []
                for server in info["seal_key_servers"]:
                    key_server = await reader.key_server(server["objectId"])
                    endpoints.append(KeyServerEndpoint(server["objectId"], key_server.url, key_server.public_key))
                package = info["memwal_package_id"]
                owner_bytes = bytes.fromhex(account.owner_address[2:])
                ciphertext = encrypt(package_id=bytes.fromhex(package[2:]), inner_id=owner_bytes, threshold=2,
                                     key_servers=[KeyServerPublic(e.object_id_bytes, e.public_key) for e in endpoints],
                                     plaintext=b"a secret memory")
                encrypted = EncryptedObject.from_bytes(ciphertext)
                on_chain = await reader.get_account(account.account_id)
                session = SessionKey.create(user_seed=bytes.fromhex(account.delegate_private_key_hex),
                                            package_id=package, ttl_min=10, now_ms=int(time.time() * 1000),
                                            session_seed=os.urandom(32))
                ptb = build_seal_approve_ptb(package, [(owner_bytes, account.account_id,
                                                        on_chain.initial_shared_version)])
                # one server down: the threshold of two is still reached
                client = KeyServerClient(endpoints[:1] + [KeyServerEndpoint(endpoints[1].object_id,
                                                                            "http://127.0.0.1:9", b"")]
                                         + endpoints[2:], 2, http)
                keys = await client.fetch_keys(ptb, session, [encrypted.full_id])
                assert decrypt_objects([encrypted], keys) == [b"a secret memory"]

    async def _check_servers(self, http, info):
        for url in [info["walrus_publisher_url"], *info["walrus_aggregator_urls"]]:
            assert (await http.get(url + "/v1/api")).status_code == 200
        models = await http.get(info["openai_api_base"] + "/models",
                                headers={"Authorization": f"Bearer {info['openai_api_key']}"})
        assert models.status_code == 200
        for server in info["seal_key_servers"]:
            service = await http.get(f"{server['url']}/v1/service", params={"service_id": server["objectId"]})
            assert service.status_code == 200 and service.json()["service_id"] == server["objectId"]
        rpc = await http.post(info["sui_rpc_url"], json={"jsonrpc": "2.0", "id": 1, "method": "sui_getObject",
                                                         "params": [info["memwal_package_id"], {}]})
        assert rpc.json()["result"]["data"]["version"] == "1"
        wallet_seed = decode_sui_private_key(info["server_wallet_keys"][0])
        wallet = sui_address(bytes(nacl.signing.SigningKey(wallet_seed).verify_key))
        coins = await http.post(info["sui_rpc_url"], json={"jsonrpc": "2.0", "id": 2, "method": "suix_getCoins",
                                                           "params": [wallet, None, None, None]})
        assert len(coins.json()["result"]["data"]) >= 1

    async def _check_account(self, http, info, account):
        rpc = await http.post(info["sui_rpc_url"], json={"jsonrpc": "2.0", "id": 3, "method": "sui_getObject",
                                                         "params": [account.account_id, {"showContent": True}]})
        fields = rpc.json()["result"]["data"]["content"]["fields"]
        assert fields["owner"] == account.owner_address
        keys = [key["fields"] for key in fields["delegate_keys"]]
        assert [(bytes(key["public_key"]).hex(), key["label"]) for key in keys] == [
            (account.delegate_public_key_hex, "laptop")]
        delegate_seed = bytes.fromhex(account.delegate_private_key_hex)
        assert sign_personal_message(delegate_seed, b"x")  # the printed key is a usable Ed25519 seed


def start_localnet_process(state: Path) -> tuple[subprocess.Popen, list[str]]:
    """``python -m localnet`` on ``state``, once it has printed where everything listens."""
    process = subprocess.Popen([sys.executable, "-m", "localnet", "--state", str(state), "--key-servers", "1",
                                "--threshold", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(REPOSITORY)}, cwd=REPOSITORY)
    lines: list[str] = []
    while not lines or not lines[-1].startswith("localnet.json"):
        line = process.stdout.readline()  # type: ignore[union-attr]
        assert line, process.stderr.read()  # type: ignore[union-attr]
        lines.append(line)
    return process, lines


def create_account_with_cli(state: Path) -> dict:
    created = subprocess.run([sys.executable, "-m", "localnet.cli", "create-account", "--state", str(state), "--json"],
                             capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPOSITORY)},
                             cwd=REPOSITORY, timeout=60, check=True)
    return json.loads(created.stdout)


def stop_process(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()
    process.stdout.close()  # type: ignore[union-attr]
    process.stderr.close()  # type: ignore[union-attr]


@pytest.mark.slow
class TestCommandLine:
    def test_a_killed_localnet_restarts_with_its_state(self, tmp_path):
        """SIGKILL right after an account was created (nothing runs at exit): the restart has the account,
        the same key servers, and the funded wallets, read back from the snapshot and the journal."""
        process, _ = start_localnet_process(tmp_path)
        try:
            before = json.loads((tmp_path / "localnet.json").read_text())
            account = create_account_with_cli(tmp_path)
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
        finally:
            stop_process(process)
        assert (tmp_path / "world.json.journal").stat().st_size > 0  # the account lives in the journal only
        process, _ = start_localnet_process(tmp_path)
        try:
            after = json.loads((tmp_path / "localnet.json").read_text())
            assert [server["objectId"] for server in after["seal_key_servers"]] == [
                server["objectId"] for server in before["seal_key_servers"]]
            assert after["server_wallet_keys"] == before["server_wallet_keys"]
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=30) == 0
        finally:
            stop_process(process)
        world = World(tmp_path / "world.json")
        stored = world.get(account["account_id"])
        assert stored is not None and stored.struct.address("owner") == account["owner_address"]

    def test_runs_until_sigint_and_cli_creates_an_account(self, tmp_path):
        process, lines = start_localnet_process(tmp_path)
        try:
            assert any(line.startswith("walrus-publisher") for line in lines)
            account = create_account_with_cli(tmp_path)
            assert account["account_id"].startswith("0x") and len(account["delegate_private_key_hex"]) == 64
            assert "MemWal.create(key=" in account["sdk_snippet"]
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=30) == 0
            assert "localnet stopped" in process.stdout.read()
        finally:
            stop_process(process)
