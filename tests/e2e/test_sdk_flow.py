"""The official memwal SDK (PyPI 0.2.1, unmodified) against the whole stack over HTTP.

remember → wait → recall (decrypted) → bulk → analyze → ask → embed → stats → namespaces → forget →
restore after the index is wiped → manual remember/recall with client-side Seal encryption.
"""

from __future__ import annotations

import base64
import os
import time

import asyncpg
import httpx
import pytest
from memwal import MemWal
from memwal.types import RecallManualOptions, RecallParams, RememberBulkItem, RememberBulkOptions, RememberManualOptions

from chain import bcs
from chain.jsonrpc import JsonRpcChainReader
from sealcrypto import (
    EncryptedObject,
    KeyServerClient,
    KeyServerEndpoint,
    KeyServerPublic,
    SessionKey,
    build_seal_approve_ptb,
    decrypt,
    encrypt,
)

pytestmark = [pytest.mark.e2e, pytest.mark.interop, pytest.mark.database, pytest.mark.asyncio(loop_scope="session")]


def sdk(stack, namespace: str = "default") -> MemWal:
    return MemWal.create(
        key=stack.account.delegate_private_key_hex,
        account_id=stack.account.account_id,
        server_url=stack.relayer_url,
        namespace=namespace,
    )


async def test_remember_recall_round_trip(stack):
    client = sdk(stack, "flow")
    try:
        accepted = await client.remember("I am allergic to peanuts")
        assert accepted.job_id
        done = await client.wait_for_remember_job(accepted.job_id, poll_interval_ms=200, timeout_ms=30_000)
        assert done.id == accepted.job_id
        assert done.owner == stack.account.owner_address
        assert len(done.blob_id) == 43
        recalled = await client.recall(RecallParams(query="peanuts allergy", limit=5))
        assert [m.text for m in recalled.results] == ["I am allergic to peanuts"]
        assert recalled.results[0].blob_id == done.blob_id
        assert recalled.dropped_count == 0
    finally:
        await client.close()


async def test_bulk_analyze_ask_embed_stats(stack):
    client = sdk(stack, "profile")
    try:
        bulk = await client.remember_bulk_and_wait(
            [RememberBulkItem(text="I live in Lisbon"), RememberBulkItem(text="My dog is called Rex")],
            RememberBulkOptions(poll_interval_ms=200, timeout_ms=60_000),
        )
        assert (bulk.succeeded, bulk.failed, bulk.timed_out) == (2, 0, 0)
        analyzed = await client.analyze_and_wait(
            "I drink green tea every morning. My sister is called Ana.",
            opts=RememberBulkOptions(poll_interval_ms=200, timeout_ms=60_000),
        )
        assert analyzed.succeeded == len(analyzed.facts) >= 2
        assert any("Ana" in fact.text for fact in analyzed.facts)
        answer = await client.ask("What is my dog called?", limit=5)
        assert answer.memories_used >= 1
        assert any("Rex" in memory.text for memory in answer.memories)
        vector = (await client.embed("hello world")).vector
        assert len(vector) == 1536
        stats = await client._signed_request("POST", "/api/stats", {"namespace": "profile"}, include_seal_session=False)
        assert stats["memory_count"] == 2 + len(analyzed.facts)
        assert stats["owner"] == stack.account.owner_address
        namespaces = await client.list_namespaces()
        names = {ns.name: ns.memory_count for ns in namespaces.namespaces}
        assert names["profile"] == stats["memory_count"]
    finally:
        await client.close()


async def test_idempotent_remember_recent_recall_and_namespace_pages(stack):
    client = sdk(stack, "recency")
    try:
        # The SDK derives an idempotency key from (30-min bucket, namespace, text): a retry is the same job.
        first = await client.remember("I moved to Lisbon in March")
        assert (await client.remember("I moved to Lisbon in March")).job_id == first.job_id
        explicit = await client.remember("Bananas are yellow", idempotency_key="bananas-1")
        assert (await client.remember("Bananas are yellow", idempotency_key="bananas-1")).job_id == explicit.job_id
        for job_id in (first.job_id, explicit.job_id):
            await client.wait_for_remember_job(job_id, poll_interval_ms=200, timeout_ms=30_000)
        recent = await client.recall(RecallParams(query="where did I move?", limit=2, sort="recent"))
        assert [m.text for m in recent.results] == ["Bananas are yellow", "I moved to Lisbon in March"]
        assert all(m.created_at for m in recent.results) and recent.results[0].created_at >= recent.results[1].created_at
        relevant = await client.recall(RecallParams(query="where did I move?", limit=1))
        assert [m.text for m in relevant.results] == ["I moved to Lisbon in March"] and relevant.results[0].score is None
        seen: list[str] = []
        cursor = None
        while True:
            page = await client.list_namespaces(cursor=cursor, limit=1)
            seen += [ns.name for ns in page.namespaces]
            cursor = page.next_cursor
            if not page.has_more:
                break
        assert "recency" in seen and len(seen) == len(set(seen))
    finally:
        await client.close()


async def test_forget_then_restore_after_wipe(stack):
    client = sdk(stack, "restore-me")
    try:
        texts = ["first restorable memory", "second restorable memory", "third restorable memory"]
        bulk = await client.remember_bulk_and_wait(
            [RememberBulkItem(text=t) for t in texts], RememberBulkOptions(poll_interval_ms=200, timeout_ms=60_000)
        )
        assert bulk.succeeded == 3
        # Wipe the whole index, as if the database were lost; Walrus and Sui still hold everything.
        connection = await asyncpg.connect(stack.database_url)
        try:
            await connection.execute("TRUNCATE vector_entries")
        finally:
            await connection.close()
        assert (await client.recall(RecallParams(query="restorable memory", limit=10))).results == []
        restored = await client.restore("restore-me", limit=10)
        assert (restored.restored, restored.total, restored.failed, restored.truncated) == (3, 3, 0, False)
        again = await client.restore("restore-me", limit=10)
        assert (again.restored, again.skipped) == (0, 3)
        recalled = await client.recall(RecallParams(query="restorable memory", limit=10))
        assert sorted(m.text for m in recalled.results) == sorted(texts)
        forgotten = await client._signed_request("POST", "/api/forget", {"namespace": "restore-me"}, include_seal_session=False)
        assert forgotten["deleted"] == 3
        assert (await client.recall(RecallParams(query="restorable memory", limit=10))).results == []
    finally:
        await client.close()


async def test_manual_remember_and_recall(stack):
    info = stack.info
    owner = stack.account.owner_address
    namespace = "manual"
    async with httpx.AsyncClient() as http:
        chain = JsonRpcChainReader(info["sui_rpc_url"], http=http)
        endpoints = []
        for server in info["seal_key_servers"]:
            key_server = await chain.key_server(server["objectId"])
            endpoints.append(KeyServerEndpoint(key_server.object_id, key_server.url, key_server.public_key))
        package = bcs.address(info["memwal_package_id"])
        # Manual mode identity, as MemWal's TS SDK: utf8(namespace) ‖ owner address.
        inner_id = namespace.encode() + bcs.address(owner)
        ciphertext = encrypt(
            package_id=package,
            inner_id=inner_id,
            key_servers=[KeyServerPublic.from_hex(e.object_id, e.public_key) for e in endpoints],
            threshold=info["seal_threshold"],
            plaintext=b"a memory encrypted on the client",
        )
        client = sdk(stack, namespace)
        try:
            vector = (await client.embed("a memory encrypted on the client")).vector
            stored = await client.remember_manual(
                RememberManualOptions(encrypted_data=base64.b64encode(ciphertext).decode(), vector=vector)
            )
            assert stored.owner == owner and stored.namespace == namespace
            hits = await client.recall_manual(RecallManualOptions(vector=vector, limit=3))
            assert [hit.blob_id for hit in hits.results] == [stored.blob_id]
            assert hits.results[0].distance < 1e-4
        finally:
            await client.close()
        # The client downloads and decrypts by itself: the relayer never saw this plaintext.
        blob = (await http.get(f"{info['walrus_aggregator_urls'][0]}/v1/blobs/{stored.blob_id}")).content
        assert blob == ciphertext
        delegate_seed = bytes.fromhex(stack.account.delegate_private_key_hex)
        session = SessionKey.create(
            user_seed=delegate_seed, package_id=info["memwal_package_id"], ttl_min=5,
            now_ms=int(time.time() * 1000), session_seed=os.urandom(32),
        )
        account = await chain.get_account(stack.account.account_id)
        ptb = build_seal_approve_ptb(info["memwal_package_id"], [(inner_id, account.account_id, account.initial_shared_version)])
        obj = EncryptedObject.from_bytes(blob)
        keys = await KeyServerClient(endpoints, info["seal_threshold"], http).fetch_keys(ptb, session, [obj.full_id])
        usks = {object_id: per_id[obj.full_id] for object_id, per_id in keys.items()}
        assert decrypt(obj, usks) == b"a memory encrypted on the client"
