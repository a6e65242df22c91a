"""Every relayer route through httpx.ASGITransport: real PostgreSQL, Redis, localnet (Sui, Walrus, Seal key
servers, OpenAI stand-in) and the real sidecar app in process. Each test uses accounts of its own."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import time
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
import schemathesis

from chain.bcs import address as bcs_address
from chain.jsonrpc import JsonRpcChainReader
from chain.keys import decode_sui_private_key
from chain.programmable_transaction import GasData, OwnedObjectInput, ProgrammableTransactionBuilder, TransactionData
from chain.transactions import sign_transaction
from localnet.cli import create_account
from relayer.api_table import block_of, markdown_table
from relayer.app import build_app
from relayer.errors import SealAccessDenied
from relayer.metrics_listener import metrics_app
from sealcrypto import EncryptedObject
from tests.e2e.signing import seal_session_header

pytestmark = pytest.mark.database

NAMESPACE = "routes"


@pytest_asyncio.fixture(loop_scope="session")
async def alice(localnet):
    return await create_account(localnet, label="alice")


async def wait_done(relayer, account, job_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = await relayer.call(account, "GET", f"/api/remember/{job_id}")
        assert response.status_code == 200, response.text
        if response.json()["status"] in ("done", "failed"):
            return response.json()
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {job_id} not done within {timeout} s")


async def remember(relayer, account, text: str, namespace: str = NAMESPACE) -> dict:
    response = await relayer.call(account, "POST", "/api/remember", {"text": text, "namespace": namespace})
    assert response.status_code == 202, response.text
    done = await wait_done(relayer, account, response.json()["job_id"])
    assert done["status"] == "done", done
    return done


async def recall(relayer, account, query: str, namespace: str = NAMESPACE, **extra) -> dict:
    response = await relayer.call(account, "POST", "/api/recall", {"query": query, "namespace": namespace, **extra}, session=True)
    assert response.status_code == 200, response.text
    return response.json()


class TestPublicRoutes:
    async def test_health_version_config(self, relayer):
        health = await relayer.client.get("/health")
        assert health.status_code == 200
        assert (health.json()["status"], health.json()["write_ready"]) == ("ok", True)
        assert set(health.json()["dependencies"]) == {"database", "redis", "sidecar", "chain"}
        assert all(state["ok"] for state in health.json()["dependencies"].values())
        assert (await relayer.client.get("/version")).json()["apiVersion"] == "1.0.0"
        config = (await relayer.client.get("/config")).json()
        assert config["packageId"] == relayer.info["memwal_package_id"] and config["network"] == "localnet"

    async def test_openapi_documents_every_route_from_the_models_it_validates_with(self, relayer):
        response = await relayer.client.get("/openapi.json")
        assert response.status_code == 200
        document = response.json()
        assert document["openapi"] == "3.1.0"
        schemathesis.openapi.from_dict(document)  # a real OpenAPI loader accepts it
        documented = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
        served = {(method, route.path) for route in build_app(relayer.services).routes for method in route.methods or ()
                  if method != "HEAD"}
        assert documented == served
        remember = document["paths"]["/api/remember"]["post"]
        assert remember["security"] == [{"x-public-key": [], "x-signature": [], "x-timestamp": [], "x-nonce": []}]
        assert set(remember["responses"]) == {"202", "400", "401", "402", "408", "413", "415", "422", "426", "429", "502", "503"}
        assert remember["responses"]["503"]["headers"]["Retry-After"] and "content" not in remember["responses"]["401"]
        # The request schema is the model's own: its bounds come from the same types the route validates with.
        schema = document["components"]["schemas"]["RememberRequest"]
        assert schema["required"] == ["text"] and schema["properties"]["text"]["maxLength"] == 1024 * 1024
        vector = document["components"]["schemas"]["ManualRecallRequest"]["properties"]["vector"]
        assert (vector["minItems"], vector["maxItems"]) == (1536, 1536)

    async def test_readme_api_table_is_the_one_generated_from_the_served_document(self, relayer):
        document = (await relayer.client.get("/openapi.json")).json()
        generated = markdown_table(document)
        readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
        assert block_of(readme) == generated, (
            "README's API table is stale: run `python -m relayer api-table http://<relayer>/openapi.json "
            "--readme README.md` against a relayer of this tree")
        assert "| `POST /api/remember` | delegate signature | write budget, weight 5 |" in generated

    async def test_health_reads_the_background_status_without_calling_the_sidecar(self, relayer):
        await relayer.services.health.stop()  # no background probe between the requests below
        try:
            # One round now: the last background round may have met a loop stalled by another test's work.
            assert (await relayer.services.health.refresh()).healthy
            relayer.sidecar_paths.clear()
            for _ in range(5):
                assert (await relayer.client.get("/health")).status_code == 200
            assert relayer.sidecar_paths == []
        finally:
            relayer.services.health.start()

    async def test_metrics_are_not_served_on_the_client_port(self, relayer):
        assert (await relayer.client.get("/metrics")).status_code == 404
        operator = httpx.AsyncClient(transport=httpx.ASGITransport(app=metrics_app(relayer.services.metrics)), base_url="http://op")
        async with operator:
            metrics = await operator.get("/metrics")
        assert metrics.status_code == 200 and "memwal_http_requests_total" in metrics.text

    async def test_unknown_route_and_wrong_method_are_json(self, relayer):
        missing = await relayer.client.get("/api/nothing-here")
        assert (missing.status_code, missing.json()) == (404, {"error": "Not Found"})
        wrong = await relayer.client.get("/api/remember/bulk/status")
        assert wrong.status_code == 405 and wrong.json() == {"error": "Method Not Allowed"}


class TestRememberAndRecall:
    async def test_remember_then_recall_opens_blobs_in_one_sidecar_call(self, relayer, alice):
        done = await remember(relayer, alice, "I drink green tea every morning")
        assert done["blob_id"] and done["owner"] == alice.owner_address
        await remember(relayer, alice, "My cat is called Miso")
        relayer.sidecar_paths.clear()
        body = await recall(relayer, alice, "what do I drink?", limit=10)
        assert {r["text"] for r in body["results"]} == {"I drink green tea every morning", "My cat is called Miso"}
        assert body["total"] == 2 and "dropped_count" not in body
        assert relayer.operations() == ["/blobs/open"]  # read + decrypt of both hits: one round trip

    async def test_recall_with_scoring_weights_and_manual_recall(self, relayer):
        account = await create_account(relayer.info, label="weights")
        await remember(relayer, account, "Sunny days are best for cycling")
        body = await recall(relayer, account, "cycling", scoring_weights={"semantic": 1, "recency": 1})
        assert [r["text"] for r in body["results"]] == ["Sunny days are best for cycling"] and "score" in body["results"][0]
        vector = (await relayer.call(account, "POST", "/api/embed", {"text": "cycling"})).json()["vector"]
        assert len(vector) == 1536
        manual = await relayer.call(account, "POST", "/api/recall/manual", {"vector": vector, "namespace": NAMESPACE})
        assert manual.status_code == 200 and manual.json()["total"] == 1 and "text" not in manual.json()["results"][0]

    async def test_recall_without_a_seal_session_is_400(self, relayer, alice):
        response = await relayer.call(alice, "POST", "/api/recall", {"query": "x", "namespace": NAMESPACE})
        assert response.status_code == 400 and "x-seal-session" in response.json()["error"]

    async def test_idempotency_key_returns_the_same_job(self, relayer, alice):
        payload = {"text": "once only", "namespace": "idem", "idempotency_key": "key-1"}
        first = await relayer.call(alice, "POST", "/api/remember", payload)
        second = await relayer.call(alice, "POST", "/api/remember", payload)
        assert first.status_code == second.status_code == 202
        assert first.json()["job_id"] == second.json()["job_id"]

    async def test_bulk_and_bulk_status(self, relayer):
        account = await create_account(relayer.info, label="bulk")
        items = [{"text": f"bulk fact {i}", "namespace": "bulk"} for i in range(3)]
        response = await relayer.call(account, "POST", "/api/remember/bulk", {"items": items})
        assert response.status_code == 202 and response.json()["total"] == 3
        job_ids = response.json()["job_ids"]
        for job_id in job_ids:
            await wait_done(relayer, account, job_id)
        status = await relayer.call(account, "POST", "/api/remember/bulk/status", {"job_ids": [*job_ids, "nope"]})
        results = status.json()["results"]
        assert [r["status"] for r in results] == ["done", "done", "done", "not_found"]
        stats = await relayer.call(account, "POST", "/api/stats", {"namespace": "bulk"})
        assert stats.json()["memory_count"] == 3 and stats.json()["storage_bytes"] > 0

    async def test_job_of_another_owner_is_not_found(self, relayer, alice):
        bob = await create_account(relayer.info, label="bob")
        job_id = (await relayer.call(alice, "POST", "/api/remember", {"text": "alice only"})).json()["job_id"]
        response = await relayer.call(bob, "GET", f"/api/remember/{job_id}")
        assert response.status_code == 404 and response.json() == {"error": f"Job {job_id} not found"}


class TestManualRememberAndRestore:
    async def test_manual_remember_is_recalled_and_restored_after_forget(self, relayer):
        account = await create_account(relayer.info, label="manual")
        ciphertext = await relayer.services.sidecar.encrypt(
            b"manual memory", owner=account.owner_address, package_id=relayer.info["memwal_package_id"]
        )
        vector = (await relayer.call(account, "POST", "/api/embed", {"text": "manual memory"})).json()["vector"]
        stored = await relayer.call(account, "POST", "/api/remember/manual", {
            "encrypted_data": base64.b64encode(ciphertext).decode(), "vector": vector, "namespace": "manual"})
        assert stored.status_code == 200, stored.text
        assert (await recall(relayer, account, "manual memory", "manual"))["results"][0]["text"] == "manual memory"
        forgot = await relayer.call(account, "POST", "/api/forget", {"namespace": "manual"})
        assert forgot.json()["deleted"] == 1
        relayer.sidecar_paths.clear()
        restored = await relayer.call(account, "POST", "/api/restore", {"namespace": "manual"}, session=True)
        assert restored.status_code == 200, restored.text
        assert (restored.json()["restored"], restored.json()["failed"], restored.json()["truncated"]) == (1, 0, False)
        assert relayer.operations() == ["/walrus/query-blobs", "/blobs/open"]
        stats = (await relayer.call(account, "POST", "/api/stats", {"namespace": "manual"})).json()
        assert stats["memory_count"] == 1 and stats["storage_bytes"] == len(ciphertext)
        again = await relayer.call(account, "POST", "/api/restore", {"namespace": "manual"}, session=True)
        assert (again.json()["restored"], again.json()["skipped"]) == (0, 1)


async def give_blob_away(relayer, account, blob_id: str) -> None:
    """The owner transfers its Blob object for ``blob_id`` to a stranger: a real, signed Sui transaction."""
    info = relayer.info
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{info['sui_rpc_url']}/_localnet/fund", json={"address": account.owner_address, "amount": 10**9})
        assert response.status_code == 200, response.text
        chain = JsonRpcChainReader(info["sui_rpc_url"], http=http)
        [blob] = [b for b in await chain.owned_blobs(account.owner_address, info["walrus_package_id"]) if b.blob_id == blob_id]
        builder = ProgrammableTransactionBuilder()
        argument = builder.input(OwnedObjectInput(await chain.object_ref(blob.object_id)))
        builder.transfer_objects([argument], builder.pure(bcs_address("0x" + "5a" * 32)))
        gas = GasData(tuple((await chain.gas_coins(account.owner_address))[:1]), account.owner_address, await chain.gas_price(), 50_000_000)
        tx_bytes = TransactionData(builder.finish(), account.owner_address, gas).to_bcs()
        await chain.execute_transaction(tx_bytes, [sign_transaction(decode_sui_private_key(account.owner_private_key), tx_bytes)])


class TestIssue369:
    """B copies A's public ciphertext into B's own index with a manual remember: refused before any upload."""

    async def test_a_seal_object_for_another_identity_is_403_before_upload(self, relayer, alice):
        bob = await create_account(relayer.info, label="copycat")
        alices = await relayer.services.sidecar.encrypt(b"alice's secret", owner=alice.owner_address,
                                                        package_id=relayer.info["memwal_package_id"])
        vector = (await relayer.call(bob, "POST", "/api/embed", {"text": "secret"})).json()["vector"]
        relayer.sidecar_paths.clear()
        response = await relayer.call(bob, "POST", "/api/remember/manual",
                                      {"encrypted_data": base64.b64encode(alices).decode(), "vector": vector})
        assert response.status_code == 403 and "not encrypted for your identity" in response.json()["error"]
        assert relayer.operations() == []  # nothing uploaded, nothing paid

    async def test_a_seal_object_under_another_package_is_403(self, relayer, alice):
        mine = EncryptedObject.from_bytes(await relayer.services.sidecar.encrypt(
            b"x", owner=alice.owner_address, package_id=relayer.info["memwal_package_id"]))
        foreign = dataclasses.replace(mine, package_id=bytes(32)).to_bytes()
        vector = (await relayer.call(alice, "POST", "/api/embed", {"text": "x"})).json()["vector"]
        response = await relayer.call(alice, "POST", "/api/remember/manual",
                                      {"encrypted_data": base64.b64encode(foreign).decode(), "vector": vector})
        assert response.status_code == 403 and "package" in response.json()["error"]

    async def test_bytes_that_are_no_seal_object_are_400(self, relayer, alice):
        vector = (await relayer.call(alice, "POST", "/api/embed", {"text": "x"})).json()["vector"]
        response = await relayer.call(alice, "POST", "/api/remember/manual",
                                      {"encrypted_data": base64.b64encode(b"not a seal object").decode(), "vector": vector})
        assert response.status_code == 400 and "not a Seal EncryptedObject" in response.json()["error"]

    async def test_the_localnet_key_servers_run_the_fixed_rule(self, relayer, alice):
        # Even past the relayer (a direct sidecar call with B's session), B cannot open A's blob.
        bob = await create_account(relayer.info, label="direct")
        blob_id = (await remember(relayer, alice, "only alice reads this", "fixed-rule"))["blob_id"]
        session = seal_session_header(bytes.fromhex(bob.delegate_private_key_hex), relayer.info["memwal_package_id"])
        with pytest.raises(SealAccessDenied):
            await relayer.services.sidecar.open_blobs([blob_id], package_id=relayer.info["memwal_package_id"],
                                                      account_id=bob.account_id, session=session)


class TestRowDeletionRules:
    """Index rows go only when the blob is provably gone (every aggregator says 404 *and* the owner's Blob object
    is gone on chain) or the ciphertext is corrupt; never on an outage or a 404 alone."""

    async def test_unavailable_keeps_the_row(self, relayer, faults):
        account = await create_account(relayer.info, label="outage")
        blob_id = (await remember(relayer, account, "kept through an outage"))["blob_id"]
        await faults(0, {"unavailable": True})
        await faults(1, {"lostBlobIds": [blob_id]})
        body = await recall(relayer, account, "outage")
        assert (body["total"], body["dropped_count"]) == (0, 1)
        assert (await relayer.call(account, "POST", "/api/stats", {"namespace": NAMESPACE})).json()["memory_count"] == 1

    async def test_404_everywhere_while_the_object_lives_keeps_the_row(self, relayer, faults):
        # Right after certification, or in an aggregator outage that answers 404: drop the hit, count it, keep the row.
        account = await create_account(relayer.info, label="transient404")
        blob_id = (await remember(relayer, account, "briefly missing"))["blob_id"]
        await faults(0, {"lostBlobIds": [blob_id]})
        await faults(1, {"lostBlobIds": [blob_id]})
        body = await recall(relayer, account, "missing")
        assert (body["total"], body["dropped_count"]) == (0, 1)
        assert (await relayer.call(account, "POST", "/api/stats", {"namespace": NAMESPACE})).json()["memory_count"] == 1
        assert 'memwal_blob_not_found_total{action="kept"}' in relayer.services.metrics.render().decode()

    async def test_404_everywhere_and_the_object_gone_deletes_the_row(self, relayer, faults):
        account = await create_account(relayer.info, label="gone")
        blob_id = (await remember(relayer, account, "lost for good"))["blob_id"]
        await give_blob_away(relayer, account, blob_id)
        await faults(0, {"lostBlobIds": [blob_id]})
        await faults(1, {"lostBlobIds": [blob_id]})
        body = await recall(relayer, account, "lost")
        assert (body["total"], body["dropped_count"]) == (0, 1)
        assert (await relayer.call(account, "POST", "/api/stats", {"namespace": NAMESPACE})).json()["memory_count"] == 0

    async def test_corrupt_ciphertext_deletes_the_row(self, relayer):
        account = await create_account(relayer.info, label="corrupt")
        sealed = EncryptedObject.from_bytes(await relayer.services.sidecar.encrypt(
            b"to be damaged", owner=account.owner_address, package_id=relayer.info["memwal_package_id"]))
        blob = bytearray(sealed.ciphertext.blob)
        blob[0] ^= 0xFF  # the header is the caller's own, the AEAD tag no longer matches
        damaged = dataclasses.replace(sealed, ciphertext=dataclasses.replace(sealed.ciphertext, blob=bytes(blob))).to_bytes()
        vector = (await relayer.call(account, "POST", "/api/embed", {"text": "junk"})).json()["vector"]
        stored = await relayer.call(account, "POST", "/api/remember/manual", {
            "encrypted_data": base64.b64encode(damaged).decode(), "vector": vector})
        assert stored.status_code == 200, stored.text
        body = await recall(relayer, account, "junk", "default")
        assert (body["total"], body["dropped_count"]) == (0, 1)
        assert (await relayer.call(account, "POST", "/api/stats", {})).json()["memory_count"] == 0


class TestAskAnalyzeAndNamespaces:
    async def test_ask_uses_the_memories(self, relayer):
        account = await create_account(relayer.info, label="ask")
        await remember(relayer, account, "The spare key is under the blue pot")
        response = await relayer.call(account, "POST", "/api/ask", {"question": "where is the spare key?", "namespace": NAMESPACE},
                                      session=True)
        assert response.status_code == 200, response.text
        assert response.json()["memories_used"] == 1 and response.json()["answer"]

    async def test_analyze_queues_one_job_per_fact(self, relayer):
        account = await create_account(relayer.info, label="analyze")
        response = await relayer.call(account, "POST", "/api/analyze",
                                      {"text": "I moved to Lisbon last year and I love surfing.", "namespace": "facts"}, session=True)
        assert response.status_code == 202, response.text
        body = response.json()
        assert body["fact_count"] == len(body["job_ids"]) >= 1
        for job_id in body["job_ids"]:
            assert (await wait_done(relayer, account, job_id))["status"] == "done"

    async def test_namespace_listing_is_owner_scoped(self, relayer):
        account = await create_account(relayer.info, label="listing")
        await remember(relayer, account, "in ns-a", "ns-a")
        await remember(relayer, account, "in ns-b", "ns-b")
        page = await relayer.call(account, "GET", f"/v1/owners/{account.owner_address}/namespaces?limit=10")
        assert page.status_code == 200, page.text
        assert [n["name"] for n in page.json()["namespaces"]] == ["ns-a", "ns-b"]
        other = await relayer.call(account, "GET", f"/v1/owners/0x{'12' * 32}/namespaces")
        assert other.status_code == 403 and other.json() == {"error": "owner mismatch"}
