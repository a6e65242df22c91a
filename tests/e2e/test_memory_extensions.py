"""Forget by id, tags and TTLs (extensions beyond upstream) against the whole stack over HTTP: relayer, sidecar
and indexer as separate processes, the real expiry sweep running on its own schedule.

The official SDK (0.2.1, unmodified) remembers and recalls; the extension fields go through a plain signed
client (tests/e2e/signing.py), as a caller of the extension API would send them.
"""

from __future__ import annotations

import asyncio
import time

import asyncpg
import httpx
import pytest
from memwal import MemWal
from memwal.types import RecallParams

from localnet.cli import create_account
from tests.e2e.signing import body_of, seal_session_header, signed_headers

pytestmark = [pytest.mark.e2e, pytest.mark.interop, pytest.mark.database, pytest.mark.asyncio(loop_scope="session")]

RELAYER_ENV = {"MEMORY_MIN_TTL_SECS": "1", "EXPIRY_SWEEP_INTERVAL_SECS": "1"}
WAIT_SECONDS = 60


def sdk(stack, namespace: str) -> MemWal:
    return MemWal.create(key=stack.account.delegate_private_key_hex, account_id=stack.account.account_id,
                         server_url=stack.relayer_url, namespace=namespace)


async def call(stack, account, path: str, payload: dict, *, session: bool = False) -> httpx.Response:
    body = body_of(payload)
    seed = bytes.fromhex(account.delegate_private_key_hex)
    headers = signed_headers(seed, "POST", path, body, account_id=account.account_id)
    if session:
        headers["x-seal-session"] = seal_session_header(seed, stack.info["memwal_package_id"])
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.post(stack.relayer_url + path, content=body, headers=headers)


async def remember_and_wait(stack, client: MemWal, payload: dict) -> str:
    response = await call(stack, stack.account, "/api/remember", payload)
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    done = await client.wait_for_remember_job(job_id, poll_interval_ms=200, timeout_ms=30_000)
    assert done.id == job_id
    return job_id


async def test_forget_by_id_then_the_sdk_recalls_without_it(stack):
    client = sdk(stack, "e2e-forget")
    try:
        kept = await client.remember("my bike is a green road bike")
        gone = await client.remember("my bike lock code is 4711")
        for accepted in (kept, gone):
            await client.wait_for_remember_job(accepted.job_id, poll_interval_ms=200, timeout_ms=30_000)
        first = await call(stack, stack.account, "/api/forget/memory", {"memory_id": gone.job_id})
        second = await call(stack, stack.account, "/api/forget/memory", {"memory_id": gone.job_id})
        assert (first.status_code, second.status_code) == (200, 200) and first.json() == second.json()
        assert (first.json()["blob_deleted"], first.json()["blob_status"]) == (False, "held_by_owner")
        recalled = await client.recall(RecallParams(query="bike", limit=10))
        assert [memory.text for memory in recalled.results] == ["my bike is a green road bike"]
        stranger = await create_account(stack.info, label="e2e-stranger")
        foreign = await call(stack, stranger, "/api/forget/memory", {"memory_id": kept.job_id})
        assert foreign.status_code == 404
        assert len((await client.recall(RecallParams(query="bike", limit=10))).results) == 1
    finally:
        await client.close()


async def test_tag_filtered_recall(stack):
    client = sdk(stack, "e2e-tags")
    try:
        travel = await remember_and_wait(stack, client, {"text": "flight to Lisbon on May 3", "namespace": "e2e-tags",
                                                         "tags": ["travel", "2027"]})
        await remember_and_wait(stack, client, {"text": "flight school starts in June", "namespace": "e2e-tags",
                                                "tags": ["hobby"]})
        response = await call(stack, stack.account, "/api/recall",
                              {"query": "flight", "namespace": "e2e-tags", "tags": ["travel"]}, session=True)
        assert response.status_code == 200, response.text
        assert [(r["memory_id"], r["text"], r["tags"]) for r in response.json()["results"]] == [
            (travel, "flight to Lisbon on May 3", ["2027", "travel"])]
        too_many = await call(stack, stack.account, "/api/recall",
                              {"query": "flight", "namespace": "e2e-tags", "tags": [str(i) for i in range(17)]}, session=True)
        assert too_many.status_code == 400
        assert len((await client.recall(RecallParams(query="flight", limit=10))).results) == 2  # the SDK sees both
    finally:
        await client.close()


async def test_the_expiry_sweep_forgets_an_expired_memory(stack):
    client = sdk(stack, "e2e-ttl")
    try:
        short = await remember_and_wait(stack, client, {"text": "parking spot 42 until noon", "namespace": "e2e-ttl",
                                                        "ttl_seconds": 1})
        await remember_and_wait(stack, client, {"text": "parking permit renewed", "namespace": "e2e-ttl"})
        connection = await asyncpg.connect(stack.database_url)
        try:
            deadline = time.monotonic() + WAIT_SECONDS
            while not await connection.fetchval(
                "SELECT count(*) FROM forgotten_memories WHERE memory_id = $1 AND reason = 'expired'", short
            ):
                assert time.monotonic() < deadline, "the expiry sweep did not forget the memory"
                await asyncio.sleep(0.5)
            assert await connection.fetchval("SELECT count(*) FROM vector_entries WHERE id = $1", short) == 0
        finally:
            await connection.close()
        recalled = await client.recall(RecallParams(query="parking", limit=10))
        assert [memory.text for memory in recalled.results] == ["parking permit renewed"]
        answer = await call(stack, stack.account, "/api/forget/memory", {"memory_id": short})
        assert answer.status_code == 200 and answer.json()["reason"] == "expired"
    finally:
        await client.close()
