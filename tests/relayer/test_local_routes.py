"""The relayer with EMBEDDING_PROVIDER=local and EGRESS_POLICY=private, through httpx.ASGITransport with real
PostgreSQL, Redis, localnet and the sidecar app: what /config and /api/embed report, semantic recall, and
analyze/ask refused (403, with the reason) unless the LLM's destination is allowlisted for plaintext."""

from __future__ import annotations

import asyncio
import time
from contextlib import AsyncExitStack

import pytest
import pytest_asyncio

from localnet.cli import create_account
from relayer.egress_policy import destination_of
from relayer.embedding_models import LOCAL_MODEL_DIMENSIONS, LOCAL_MODEL_ID
from relayer.local_embeddings import load_local_model
from relayer.validation import EMBEDDING_DIMENSIONS
from tests.relayer.in_process import open_relayer

pytestmark = pytest.mark.database

LOCAL = {"EMBEDDING_PROVIDER": "local", "EMBEDDING_MODEL": LOCAL_MODEL_ID}
PRIVATE = {**LOCAL, "EGRESS_POLICY": "private"}
MEMORIES = [
    "I'm severely allergic to peanuts and always carry an EpiPen.",
    "My favourite breakfast is toast with almond butter.",
    "The spare house key is under the third flowerpot by the back door.",
]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def private(localnet, database_url, redis_url):
    async with AsyncExitStack() as stack:
        yield await open_relayer(localnet, stack, database_url=database_url, redis_url=redis_url, env=PRIVATE)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def account(localnet):
    return await create_account(localnet, label="local-model")


async def remember_all(relayer, account, texts: list[str], namespace: str) -> None:
    jobs = []
    for text in texts:
        response = await relayer.call(account, "POST", "/api/remember", {"text": text, "namespace": namespace})
        assert response.status_code == 202, response.text
        jobs.append(response.json()["job_id"])
    deadline = time.monotonic() + 60
    for job in jobs:
        while (status := (await relayer.call(account, "GET", f"/api/remember/{job}")).json()["status"]) not in ("done", "failed"):
            assert time.monotonic() < deadline, f"job {job} not done"
            await asyncio.sleep(0.1)
        assert status == "done"


class TestReports:
    async def test_config_names_the_model_the_policy_and_the_llm_status(self, private):
        config = (await private.client.get("/config")).json()
        assert config["embedding"] == {"provider": "local", "model": LOCAL_MODEL_ID, "dimensions": LOCAL_MODEL_DIMENSIONS,
                                       "storedDimensions": EMBEDDING_DIMENSIONS, "padding": "zeros"}  # fmt: skip
        assert (config["egressPolicy"], config["llm"]) == ("private", "refused-by-egress-policy")
        assert {"packageId", "network", "suiRpcUrl", "rateLimitDisabled"} <= set(config)

    async def test_embed_returns_the_padded_vector_and_the_model(self, private, account):
        body = (await private.call(account, "POST", "/api/embed", {"text": "where is the spare key"})).json()
        assert (body["model"], body["provider"], body["dimensions"]) == (LOCAL_MODEL_ID, "local", LOCAL_MODEL_DIMENSIONS)
        assert body["vector"] == load_local_model().embed_padded(["where is the spare key"])[0]
        assert body["vector"][LOCAL_MODEL_DIMENSIONS:] == [0.0] * (EMBEDDING_DIMENSIONS - LOCAL_MODEL_DIMENSIONS)


class TestSemanticRecall:
    async def test_a_paraphrase_finds_the_memory(self, private, account):
        await remember_all(private, account, MEMORIES, "semantic")
        for query, expected in [("Which food could make me ill?", MEMORIES[0]), ("How do I get in if I'm locked out?", MEMORIES[2])]:
            response = await private.call(account, "POST", "/api/recall", {"query": query, "namespace": "semantic", "limit": 1},
                                          session=True)  # fmt: skip
            assert response.status_code == 200, response.text
            assert [hit["text"] for hit in response.json()["results"]] == [expected]

    async def test_a_manual_recall_with_the_embed_vector_finds_it_too(self, private, account):
        vector = (await private.call(account, "POST", "/api/embed", {"text": "What am I allergic to?"})).json()["vector"]
        response = await private.call(account, "POST", "/api/recall/manual", {"vector": vector, "namespace": "semantic", "limit": 3})
        assert response.status_code == 200, response.text
        assert len(response.json()["results"]) == 3


class TestPrivatePolicy:
    @pytest.mark.parametrize(("path", "payload"), [("/api/ask", {"question": "Where is the key?"}), ("/api/analyze", {"text": "I moved to Porto."})])
    async def test_llm_routes_answer_403_with_the_reason(self, private, account, path, payload):
        response = await private.call(account, "POST", path, payload, session=True)
        assert response.status_code == 403, response.text
        feature = path.removeprefix("/api/")
        assert response.json()["error"].startswith(f"{feature} is not available on this relayer: its egress policy is private")

    async def test_an_allowlisted_llm_destination_serves_ask(self, localnet, database_url, redis_url, account):
        allowed = {**PRIVATE, "EGRESS_PLAINTEXT_DESTINATIONS": destination_of(localnet["openai_api_base"])}
        async with AsyncExitStack() as stack:
            relayer = await open_relayer(localnet, stack, database_url=database_url, redis_url=redis_url, env=allowed)
            assert (await relayer.client.get("/config")).json()["llm"] == "available"
            response = await relayer.call(account, "POST", "/api/ask", {"question": "What am I allergic to?", "namespace": "semantic"},
                                          session=True)  # fmt: skip
            assert response.status_code == 200, response.text
            assert MEMORIES[0] in [memory["text"] for memory in response.json()["memories"]]
