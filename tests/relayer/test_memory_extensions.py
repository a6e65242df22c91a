"""Forget by id, tags with tag-filtered recall, and TTLs through the real relayer app (PostgreSQL, Redis,
localnet, the in-process sidecar), with the relayer's clock injected."""

from __future__ import annotations

import base64
from contextlib import AsyncExitStack
from datetime import UTC, datetime

import pytest
import pytest_asyncio

from localnet.cli import create_account
from tests.relayer.database.test_forgetting import ManualClock
from tests.relayer.in_process import open_relayer
from tests.relayer.test_routes import recall, wait_done

pytestmark = pytest.mark.database


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock(datetime.now(UTC))


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def relayer(localnet, database_url, redis_url, clock):
    async with AsyncExitStack() as stack:
        yield await open_relayer(localnet, stack, database_url=database_url, redis_url=redis_url, clock=clock)


async def remember(relayer, account, text: str, namespace: str, **extra) -> dict:
    response = await relayer.call(account, "POST", "/api/remember", {"text": text, "namespace": namespace, **extra})
    assert response.status_code == 202, response.text
    done = await wait_done(relayer, account, response.json()["job_id"])
    assert done["status"] == "done", done
    return done


async def forget(relayer, account, memory_id: str):
    return await relayer.call(account, "POST", "/api/forget/memory", {"memory_id": memory_id})


async def listing(relayer, account) -> list[dict]:
    response = await relayer.call(account, "GET", f"/v1/owners/{account.owner_address}/memories")
    assert response.status_code == 200, response.text
    return response.json()["memories"]


class TestForgetById:
    async def test_a_forgotten_memory_is_gone_from_recall_listing_and_restore(self, relayer):
        alice = await create_account(relayer.info, label="forget-one")
        kept = await remember(relayer, alice, "I keep bees on the roof", "forget")
        gone = await remember(relayer, alice, "I keep a spare key under the mat", "forget")
        response = await forget(relayer, alice, gone["job_id"])
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["memory_id"], body["reason"], body["blob_id"]) == (gone["job_id"], "forgotten", gone["blob_id"])
        assert (body["blob_deleted"], body["blob_status"]) == (False, "held_by_owner")
        found = await recall(relayer, alice, "keep", "forget", limit=10)
        assert [result["memory_id"] for result in found["results"]] == [kept["job_id"]]
        assert [memory["memory_id"] for memory in await listing(relayer, alice)] == [kept["job_id"]]
        # The blob is still on Walrus with the owner; restore must not bring the memory back.
        restored = await relayer.call(alice, "POST", "/api/restore", {"namespace": "forget"}, session=True)
        assert restored.status_code == 200, restored.text
        assert (restored.json()["restored"], restored.json()["skipped"]) == (0, 2)
        assert [r["memory_id"] for r in (await recall(relayer, alice, "key under the mat", "forget"))["results"]] == [kept["job_id"]]

    async def test_forgetting_twice_answers_the_same(self, relayer):
        alice = await create_account(relayer.info, label="forget-twice")
        memory = await remember(relayer, alice, "forget me twice", "twice")
        first, second = await forget(relayer, alice, memory["job_id"]), await forget(relayer, alice, memory["job_id"])
        assert (first.status_code, second.status_code) == (200, 200)
        assert first.json() == second.json()

    async def test_another_owners_memory_is_404_like_an_unknown_one(self, relayer):
        alice = await create_account(relayer.info, label="forget-owner")
        mallory = await create_account(relayer.info, label="forget-mallory")
        memory = await remember(relayer, alice, "alice's private note", "private")
        foreign = await forget(relayer, mallory, memory["job_id"])
        unknown = await forget(relayer, mallory, "0f0f0f0f-0000-4000-8000-000000000000")
        assert (foreign.status_code, unknown.status_code) == (404, 404)
        assert foreign.json()["error"].replace(memory["job_id"], "ID") == unknown.json()["error"].replace(
            "0f0f0f0f-0000-4000-8000-000000000000", "ID")
        assert [r["memory_id"] for r in (await recall(relayer, alice, "private note", "private"))["results"]] == [memory["job_id"]]

    @pytest.mark.parametrize(("payload", "status"), [
        ({"memory_id": "has space"}, 400), ({"memory_id": ""}, 400), ({"memory_id": "x" * 129}, 400),
        ({"memory_id": 7}, 422), ({}, 422),
    ])
    async def test_bad_ids_are_client_errors(self, relayer, payload, status):
        alice = await create_account(relayer.info, label="forget-bad")
        response = await relayer.call(alice, "POST", "/api/forget/memory", payload)
        assert response.status_code == status, response.text


class TestTags:
    async def test_recall_filters_all_of_and_results_carry_tags(self, relayer):
        alice = await create_account(relayer.info, label="tags")
        both = await remember(relayer, alice, "dentist appointment on friday", "tagged", tags=["health", "calendar"])
        health = await remember(relayer, alice, "dentist recommended flossing", "tagged", tags=["health", "health"])
        plain = await remember(relayer, alice, "dentist office moved downtown", "tagged")
        everything = await recall(relayer, alice, "dentist", "tagged", limit=10)
        assert sorted(r["memory_id"] for r in everything["results"]) == sorted([both["job_id"], health["job_id"], plain["job_id"]])
        only_health = await recall(relayer, alice, "dentist", "tagged", limit=10, tags=["health"])
        assert sorted(r["memory_id"] for r in only_health["results"]) == sorted([both["job_id"], health["job_id"]])
        assert {r["memory_id"]: r["tags"] for r in only_health["results"]}[health["job_id"]] == ["health"]  # merged
        both_tags = await recall(relayer, alice, "dentist", "tagged", limit=10, tags=["health", "calendar"])
        assert [(r["memory_id"], r["tags"]) for r in both_tags["results"]] == [(both["job_id"], ["calendar", "health"])]
        assert "tags" not in {r["memory_id"]: r for r in everything["results"]}[plain["job_id"]]
        listed = {memory["memory_id"]: memory["tags"] for memory in await listing(relayer, alice)}
        assert listed == {both["job_id"]: ["calendar", "health"], health["job_id"]: ["health"], plain["job_id"]: []}

    async def test_bulk_items_carry_their_own_tags(self, relayer):
        alice = await create_account(relayer.info, label="bulk-tags")
        response = await relayer.call(alice, "POST", "/api/remember/bulk", {"items": [
            {"text": "bulk tagged red", "namespace": "bulk-tags", "tags": ["red"]},
            {"text": "bulk tagged blue", "namespace": "bulk-tags", "tags": ["blue"]},
        ]})
        assert response.status_code == 202, response.text
        red, _ = response.json()["job_ids"]
        for job_id in response.json()["job_ids"]:
            await wait_done(relayer, alice, job_id)
        found = await recall(relayer, alice, "bulk tagged", "bulk-tags", tags=["red"])
        assert [r["memory_id"] for r in found["results"]] == [red]

    async def test_manual_remember_takes_tags_and_a_ttl_and_its_id_forgets_it(self, relayer, clock):
        alice = await create_account(relayer.info, label="manual-tags")
        ciphertext = await relayer.services.sidecar.encrypt(
            b"manual tagged memory", owner=alice.owner_address, package_id=relayer.info["memwal_package_id"])
        vector = (await relayer.call(alice, "POST", "/api/embed", {"text": "manual tagged memory"})).json()["vector"]
        stored = await relayer.call(alice, "POST", "/api/remember/manual", {
            "encrypted_data": base64.b64encode(ciphertext).decode(), "vector": vector, "namespace": "manual-tags",
            "tags": ["client-side"], "ttl_seconds": 3600})
        assert stored.status_code == 200, stored.text
        found = await relayer.call(alice, "POST", "/api/recall/manual",
                                   {"vector": vector, "namespace": "manual-tags", "tags": ["client-side"]})
        assert [(r["memory_id"], r["tags"]) for r in found.json()["results"]] == [(stored.json()["id"], ["client-side"])]
        [listed] = await listing(relayer, alice)
        expires = datetime.fromisoformat(listed["expires_at"].replace("Z", "+00:00"))
        assert (expires - clock.now).total_seconds() == 3600
        assert (await forget(relayer, alice, stored.json()["id"])).status_code == 200
        after = await relayer.call(alice, "POST", "/api/recall/manual", {"vector": vector, "namespace": "manual-tags"})
        assert after.json()["results"] == []

    @pytest.mark.parametrize(("path", "payload", "status", "names"), [
        ("/api/remember", {"text": "t", "tags": [f"t{i}" for i in range(17)]}, 400, "at most 16"),
        ("/api/remember", {"text": "t", "tags": ["x" * 65]}, 400, "64 bytes"),
        ("/api/remember", {"text": "t", "tags": ["é" * 33]}, 400, "64 bytes"),  # 33 characters, 66 bytes
        ("/api/remember", {"text": "t", "tags": ["tab\there"]}, 400, "control"),
        ("/api/remember", {"text": "t", "tags": [""]}, 400, "1..256"),
        ("/api/remember", {"text": "t", "tags": [7]}, 422, "tags"),
        ("/api/remember", {"text": "t", "tags": "health"}, 422, "tags"),
        ("/api/remember", {"text": "t", "tags": [f"t{i}" for i in range(65)]}, 400, "at most 64"),
        ("/api/remember/bulk", {"items": [{"text": "ok"}, {"text": "t", "tags": ["x" * 65]}]}, 400, "items[1].tags"),
        ("/api/recall", {"query": "q", "tags": [f"t{i}" for i in range(17)]}, 400, "at most 16"),
        ("/api/recall/manual", {"vector": [1.0] * 1536, "tags": [None]}, 422, "tags"),
    ])
    async def test_tag_limits_are_client_errors(self, relayer, path, payload, status, names):
        alice = await create_account(relayer.info, label="tag-limits")
        response = await relayer.call(alice, "POST", path, payload, session=path == "/api/recall")
        assert response.status_code == status, response.text
        assert names in response.json()["error"]


class TestTimeToLive:
    async def test_an_expired_memory_vanishes_at_once_and_the_sweep_forgets_it(self, relayer, clock):
        alice = await create_account(relayer.info, label="ttl")
        accepted_at = clock.now
        short = await remember(relayer, alice, "the wifi guest password is lemon", "ttl", ttl_seconds=120)
        lasting = await remember(relayer, alice, "the wifi router is in the hallway", "ttl", ttl_seconds=86_400)
        listed = {memory["memory_id"]: memory for memory in await listing(relayer, alice)}
        assert listed[lasting["job_id"]]["status"] == "active"
        expires = datetime.fromisoformat(listed[short["job_id"]]["expires_at"].replace("Z", "+00:00"))
        assert (expires - accepted_at).total_seconds() == 120
        assert len((await recall(relayer, alice, "wifi", "ttl", limit=10))["results"]) == 2
        clock.advance(120)
        assert [r["memory_id"] for r in (await recall(relayer, alice, "wifi", "ttl", limit=10))["results"]] == [lasting["job_id"]]
        assert [memory["memory_id"] for memory in await listing(relayer, alice)] == [lasting["job_id"]]
        ask = await relayer.call(alice, "POST", "/api/ask", {"question": "what is the wifi password?", "namespace": "ttl"},
                                 session=True)
        assert ask.status_code == 200, ask.text
        assert [memory["text"] for memory in ask.json()["memories"]] == ["the wifi router is in the hallway"]
        assert (await relayer.services.expiry_sweep.run_once()).forgotten >= 1
        tombstone = await forget(relayer, alice, short["job_id"])
        assert tombstone.status_code == 200 and tombstone.json()["reason"] == "expired"
        clock.advance(86_400)
        assert (await recall(relayer, alice, "wifi", "ttl", limit=10))["results"] == []

    @pytest.mark.parametrize(("payload", "status", "names"), [
        ({"ttl_seconds": 59}, 400, "60..157680000"),
        ({"ttl_seconds": 157_680_001}, 400, "60..157680000"),
        ({"ttl_seconds": 0}, 400, "ttl_seconds"),
        ({"ttl_seconds": "60"}, 422, "ttl_seconds"),
        ({"ttl_seconds": 1.5}, 422, "ttl_seconds"),
    ])
    async def test_ttl_limits_are_client_errors(self, relayer, payload, status, names):
        alice = await create_account(relayer.info, label="ttl-limits")
        response = await relayer.call(alice, "POST", "/api/remember", {"text": "t", **payload})
        assert response.status_code == status, response.text
        assert names in response.json()["error"]
