"""Idempotent remember and bulk remember (one job, one blob per key, concurrent replays included) and recall's
``sort``, through the real relayer app (PostgreSQL, Redis, localnet, the in-process sidecar)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from localnet.cli import create_account
from tests.relayer.test_routes import recall, remember, wait_done

pytestmark = pytest.mark.database


async def job_rows(database_url: str, owner: str) -> list[tuple[str, str | None]]:
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch("SELECT id, idempotency_key FROM remember_jobs WHERE owner = $1 ORDER BY id", owner)
    finally:
        await connection.close()
    return [(row["id"], row["idempotency_key"]) for row in rows]


async def bulk(relayer, account, items: list[dict]) -> list[str]:
    response = await relayer.call(account, "POST", "/api/remember/bulk", {"items": items})
    assert response.status_code == 202, response.text
    return response.json()["job_ids"]


class TestBulkIdempotency:
    async def test_a_replay_returns_the_original_jobs_without_encrypting_again(self, relayer, database_url):
        account = await create_account(relayer.info, label="bulk-replay")
        items = [{"text": f"bulk idempotent {i}", "namespace": "idem-bulk", "idempotency_key": f"k{i}"} for i in range(3)]
        first = await bulk(relayer, account, items)
        assert await bulk(relayer, account, items) == first and len(set(first)) == 3  # while the jobs run
        for job_id in first:
            assert (await wait_done(relayer, account, job_id))["status"] == "done"
        relayer.sidecar_paths.clear()
        assert await bulk(relayer, account, items) == first  # and once they are done
        assert relayer.operations() == []  # no encryption, no upload: the replay only read the job rows
        assert len(await job_rows(database_url, account.owner_address)) == 3
        stats = await relayer.call(account, "POST", "/api/stats", {"namespace": "idem-bulk"})
        assert stats.json()["memory_count"] == 3  # one blob and one index row per key

    async def test_keyed_unkeyed_and_repeated_items_in_one_request(self, relayer, database_url):
        account = await create_account(relayer.info, label="bulk-mixed")
        known = await bulk(relayer, account, [{"text": "already here", "idempotency_key": "old"}])
        job_ids = await bulk(relayer, account, [
            {"text": "already here", "idempotency_key": "old"},
            {"text": "no key"},
            {"text": "twice in one request", "idempotency_key": "dup"},
            {"text": "twice in one request", "idempotency_key": "dup"},
            {"text": "no key"},
        ])
        assert job_ids[0] == known[0]
        assert job_ids[2] == job_ids[3]
        assert len({job_ids[1], job_ids[2], job_ids[4], known[0]}) == 4  # unkeyed items are never merged
        rows = await job_rows(database_url, account.owner_address)
        assert sorted(key for _, key in rows if key) == ["dup", "old"] and len(rows) == 4

    async def test_concurrent_replays_make_one_job_per_key(self, relayer, database_url):
        account = await create_account(relayer.info, label="bulk-race")
        items = [{"text": f"raced fact {i}", "namespace": "idem-race", "idempotency_key": f"race-{i}"} for i in range(4)]
        answers = await asyncio.gather(*(bulk(relayer, account, items) for _ in range(4)))
        assert all(answer == answers[0] for answer in answers) and len(set(answers[0])) == 4
        assert len(await job_rows(database_url, account.owner_address)) == 4
        for job_id in answers[0]:
            assert (await wait_done(relayer, account, job_id))["status"] == "done"
        stats = await relayer.call(account, "POST", "/api/stats", {"namespace": "idem-race"})
        assert stats.json()["memory_count"] == 4

    async def test_a_bad_key_is_400(self, relayer):
        alice = await create_account(relayer.info, label="bad-input")
        response = await relayer.call(alice, "POST", "/api/remember/bulk",
                                      {"items": [{"text": "t", "idempotency_key": "has space"}]})
        assert response.status_code == 400 and "idempotency_key" in response.json()["error"]


class TestRememberIdempotency:
    async def test_concurrent_replays_make_one_job(self, relayer, database_url):
        account = await create_account(relayer.info, label="remember-race")
        payload = {"text": "said four times at once", "namespace": "idem-one", "idempotency_key": "same"}
        answers = await asyncio.gather(*(relayer.call(account, "POST", "/api/remember", payload) for _ in range(4)))
        assert {answer.status_code for answer in answers} == {202}
        assert len({answer.json()["job_id"] for answer in answers}) == 1
        assert len(await job_rows(database_url, account.owner_address)) == 1

    async def test_a_replay_after_completion_reports_the_done_job(self, relayer):
        account = await create_account(relayer.info, label="remember-done")
        payload = {"text": "finished before the replay", "idempotency_key": "done-key"}
        first = (await relayer.call(account, "POST", "/api/remember", payload)).json()
        await wait_done(relayer, account, first["job_id"])
        again = await relayer.call(account, "POST", "/api/remember", payload)
        assert again.status_code == 202 and again.json() == {"job_id": first["job_id"], "status": "done"}


class TestRecallSort:
    async def test_recent_puts_the_newest_first_even_when_it_is_the_worst_match(self, relayer):
        account = await create_account(relayer.info, label="recent")
        texts = ["I moved to Lisbon in March", "I moved to Lisbon, then to Porto", "Bananas are yellow"]
        for text in texts:
            await remember(relayer, account, text, "recent")
        relevance = await recall(relayer, account, "where did I move?", "recent", limit=2)
        assert "Bananas are yellow" not in [r["text"] for r in relevance["results"]]
        recent = await recall(relayer, account, "where did I move?", "recent", limit=2, sort="recent")
        assert [r["text"] for r in recent["results"]] == ["Bananas are yellow", "I moved to Lisbon, then to Porto"]
        times = [r["created_at"] for r in recent["results"]]
        assert times == sorted(times, reverse=True)
        default = await recall(relayer, account, "where did I move?", "recent", limit=3, sort="relevance")
        distances = [r["distance"] for r in default["results"]]
        assert distances == sorted(distances) and all("score" not in r for r in default["results"])

    async def test_an_explicit_sort_overrides_scoring_weights(self, relayer):
        account = await create_account(relayer.info, label="recent-weights")
        await remember(relayer, account, "Tea in the morning", "recent-w")
        body = await recall(relayer, account, "tea", "recent-w", sort="recent", scoring_weights={"recency": 1})
        assert [r["text"] for r in body["results"]] == ["Tea in the morning"] and "score" not in body["results"][0]
        weighted = await recall(relayer, account, "tea", "recent-w", scoring_weights={"recency": 1})
        assert "score" in weighted["results"][0] and "created_at" in weighted["results"][0]

    async def test_an_unknown_sort_is_422(self, relayer):
        alice = await create_account(relayer.info, label="bad-input")
        response = await relayer.call(alice, "POST", "/api/recall", {"query": "x", "sort": "oldest"}, session=True)
        assert response.status_code == 422 and "sort" in response.json()["error"]
