"""localnet.sui_jsonrpc: wire behaviour a real Sui node has, plus the admin routes."""

from __future__ import annotations

import httpx
import pytest

from chain.address import sui_address
from localnet.sui_jsonrpc import build_sui_jsonrpc_app
from localnet.world import World


@pytest.fixture
def world(tmp_path) -> World:
    world = World(tmp_path / "sui.json")
    world.publish_memwal_package()
    world.create_registry()
    return world


async def rpc(world: World, method: str, params: list) -> dict:
    transport = httpx.ASGITransport(app=build_sui_jsonrpc_app(world))
    async with httpx.AsyncClient(transport=transport, base_url="http://localnet") as client:
        response = await client.post("/", json={"jsonrpc": "2.0", "id": 7, "method": method, "params": params})
    assert response.status_code == 200
    return response.json()


async def admin(world: World, method: str, path: str, body: dict | None = None) -> httpx.Response:
    transport = httpx.ASGITransport(app=build_sui_jsonrpc_app(world))
    async with httpx.AsyncClient(transport=transport, base_url="http://localnet") as client:
        return await client.request(method, path, json=body)


class TestJsonRpc:
    async def test_package_object_is_version_one_for_the_sdk_check(self, world):
        options = {"showBcs": False, "showContent": False, "showType": False}
        answer = await rpc(world, "sui_getObject", [world.packages["memwal"], options])
        assert answer["id"] == 7 and answer["result"]["data"]["version"] == "1"

    async def test_missing_object_is_reported_inside_result(self, world):
        answer = await rpc(world, "sui_getObject", ["0x99", {}])
        assert answer["result"] == {"error": {"code": "notExists", "object_id": "0x" + "0" * 62 + "99"}}

    async def test_unknown_method(self, world):
        answer = await rpc(world, "sui_doesNotExist", [])
        assert answer["error"]["code"] == -32601

    async def test_account_renders_like_a_node(self, world):
        account_id = world.create_account("0x" + "11" * 32)
        world.add_delegate_key(account_id, bytes(range(32)), "laptop")
        data = (await rpc(world, "sui_getObject", [account_id, {"showContent": True, "showOwner": True}]))["result"]["data"]
        fields = data["content"]["fields"]
        assert fields["delegate_keys"][0]["fields"]["public_key"] == list(range(32))
        assert isinstance(fields["created_at"], str) and fields["id"] == {"id": account_id}
        assert "initial_shared_version" in data["owner"]["Shared"]

    async def test_dynamic_field_pages_cap_at_fifty_and_empty_page_keeps_cursor(self, world):
        for number in range(1, 56):
            world.create_account("0x" + f"{number:064x}")
        registry = world.get(world.registry_id)
        table_id = registry.contents.fields["accounts"].fields["id"].value
        first = (await rpc(world, "suix_getDynamicFields", [table_id, None, 500]))["result"]
        assert len(first["data"]) == 50 and first["hasNextPage"]
        second = (await rpc(world, "suix_getDynamicFields", [table_id, first["nextCursor"], 50]))["result"]
        assert len(second["data"]) == 5 and not second["hasNextPage"]
        third = (await rpc(world, "suix_getDynamicFields", [table_id, second["nextCursor"], 50]))["result"]
        assert third["data"] == [] and third["nextCursor"] == second["nextCursor"]

    async def test_owner_lookup_by_dynamic_field_name(self, world):
        owner = "0x" + "22" * 32
        account_id = world.create_account(owner)
        table_id = world.get(world.registry_id).contents.fields["accounts"].fields["id"].value
        found = await rpc(world, "suix_getDynamicFieldObject", [table_id, {"type": "address", "value": owner}])
        assert found["result"]["data"]["content"]["fields"]["value"] == account_id
        missing = await rpc(world, "suix_getDynamicFieldObject", [table_id, {"type": "address", "value": "0x1"}])
        assert missing["result"]["error"]["code"] == "dynamicFieldNotFound"

    async def test_bad_params_and_bad_transaction(self, world):
        assert (await rpc(world, "suix_getDynamicFields", ["0x1", None, -3]))["error"]["code"] == -32602
        answer = await rpc(world, "sui_executeTransactionBlock", ["AAAA", ["AAAA"], {}, "WaitForLocalExecution"])
        assert answer["error"]["code"] == -32002 and "InvalidTransaction" in answer["error"]["message"]

    async def test_oversized_body_is_refused(self, world):
        transport = httpx.ASGITransport(app=build_sui_jsonrpc_app(world))
        async with httpx.AsyncClient(transport=transport, base_url="http://localnet") as client:
            response = await client.post("/", content=b"[" + b"0," * (600 * 1024) + b"0]")
        assert response.json()["error"]["code"] == -32700


class TestAdminRoutes:
    async def test_create_account_with_generated_owner_and_delegate(self, world):
        created = (await admin(world, "POST", "/_localnet/accounts", {})).json()
        assert created["ownerPrivateKey"].startswith("suiprivkey1")
        response = await admin(world, "POST", f"/_localnet/accounts/{created['accountId']}/delegates",
                               {"public_key": "01" * 32, "label": "cli"})
        assert response.json() == {"suiAddress": sui_address(bytes([1]) * 32)}
        assert world.get(created["accountId"]).contents.fields["delegate_keys"][0].fields["label"] == "cli"

    async def test_second_account_for_one_owner_is_a_move_abort(self, world):
        owner = "0x" + "33" * 32
        assert (await admin(world, "POST", "/_localnet/accounts", {"owner": owner})).status_code == 200
        again = await admin(world, "POST", "/_localnet/accounts", {"owner": owner})
        assert again.status_code == 409 and again.json()["code"] == 5

    async def test_deactivate_and_unknown_account(self, world):
        account_id = world.create_account("0x" + "44" * 32)
        assert (await admin(world, "POST", f"/_localnet/accounts/{account_id}/active", {"active": False})).status_code == 200
        assert world.get(account_id).contents.fields["active"] is False
        missing = await admin(world, "POST", "/_localnet/accounts/0x55/active", {"active": True})
        assert missing.status_code == 404

    async def test_bad_public_key_is_a_400(self, world):
        account_id = world.create_account("0x" + "66" * 32)
        response = await admin(world, "POST", f"/_localnet/accounts/{account_id}/delegates", {"public_key": "01", "label": ""})
        assert response.status_code == 400 and "32 bytes" in response.json()["error"]
