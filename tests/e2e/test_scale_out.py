"""Scale-out: three relayer instances (each with its sidecar) share one PostgreSQL, one 3-master Redis Cluster
and the server key pool, as behind a TCP load balancer (docs/scale-out.md).

Proven here: a delegate key's rate-limit budget is one budget whichever instance spends it; a signed request
accepted by one instance is a replay on the others (with a cold and a warm account cache); and when one
instance is SIGKILLed mid-burst, the others finish every remember job exactly once (one blob object, one index
row per job). Job progress is read from PostgreSQL, so the checks spend no rate-limit budget.
"""

from __future__ import annotations

import asyncio
import collections
import time
import types
import uuid

import asyncpg
import httpx
import pytest
import pytest_asyncio

from chain.jsonrpc import JsonRpcChainReader
from devtools.relayer_fleet import RelayerFleet
from localnet.cli import create_account
from tests.e2e.conftest import open_stack
from tests.e2e.test_negative import Caller, body_of

pytestmark = [pytest.mark.e2e, pytest.mark.database, pytest.mark.slow]

INSTANCES = 3
DELEGATE_BUDGET = 30  # weighted requests per minute per delegate key, across the fleet
JOBS = 6  # weight 5 each: exactly the burst key's budget
RELAYER_ENV = {
    "REDIS_CLUSTER": "1",
    "RATE_LIMIT_DELEGATE_KEY_PER_MINUTE": str(DELEGATE_BUDGET),
    "JOB_LEASE_SECS": "5",  # the least allowed: the killed instance's jobs are claimed again this soon
    # The killed sidecar's gas-coin leases expire this soon (it must exceed 3 × the sidecar's HTTP timeout).
    "SIDECAR_HTTP_TIMEOUT_SECS": "5",
    "SERVER_WALLET_GAS_LEASE_SECS": "16",
}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def fleet(tmp_path_factory, redis_cluster_url):
    async with open_stack(tmp_path_factory, relayer_env=RELAYER_ENV, redis_url=redis_cluster_url) as stack:
        async with RelayerFleet(stack, instances=INSTANCES) as running:
            yield stack, running


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def http():
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


async def callers(fleet, http, label: str) -> list[Caller]:
    """One account's delegate key, once per instance (each Caller sends to its instance only)."""
    stack, running = fleet
    account = await create_account(stack.info, label=label)
    views = [types.SimpleNamespace(relayer_url=url, info=stack.info) for url in running.urls]
    return [Caller(view, account, http, []) for view in views]


class TestRateLimitsAreGlobal:
    async def test_a_keys_budget_spent_across_instances_is_spent_on_every_instance(self, fleet, http):
        per_instance = await callers(fleet, http, "global-limit")
        for spent in range(DELEGATE_BUDGET):
            response = await per_instance[spent % INSTANCES].call("POST", "/api/stats", {"namespace": "default"})
            assert response.status_code == 200, (spent, response.text)
        # Each instance served a third of the budget; only a shared window can refuse now.
        for caller in per_instance:
            denied = await caller.call("POST", "/api/stats", {"namespace": "default"})
            assert denied.status_code == 429, denied.text
            assert denied.json()["layer"] == "delegate_key"


class TestReplayAcrossInstances:
    async def _replay_everywhere(self, per_instance: list[Caller], first: int) -> None:
        body = body_of({"namespace": "default"})
        headers = per_instance[first].sign("POST", "/api/stats", body)
        accepted = await per_instance[first].send("POST", "/api/stats", body, headers=headers)
        assert accepted.status_code == 200, accepted.text
        for index, caller in enumerate(per_instance):
            replayed = await caller.send("POST", "/api/stats", body, headers=headers)
            assert replayed.status_code == 401, (index, replayed.text)

    async def test_cold_account_caches(self, fleet, http):
        await self._replay_everywhere(await callers(fleet, http, "replay-cold"), first=1)

    async def test_warm_account_caches(self, fleet, http):
        """Each instance knows the account already: the nonce and the limits go through the cluster path."""
        per_instance = await callers(fleet, http, "replay-warm")
        for caller in per_instance:
            assert (await caller.call("POST", "/api/stats", {"namespace": "default"})).status_code == 200
        await self._replay_everywhere(per_instance, first=2)


class TestInstanceKilledMidBurst:
    async def test_every_job_is_done_exactly_once(self, fleet, http):
        stack, running = fleet
        per_instance = await callers(fleet, http, "scale-burst")
        namespace = "burst-" + uuid.uuid4().hex[:8]
        texts = [f"scale-out memory {i} {uuid.uuid4().hex[:6]}" for i in range(JOBS)]
        victim = running.instances[-1].process
        # The burst goes to the victim: its submissions wake its own workers at once, while the other instances
        # find jobs only by their idle poll (1 s), so the jobs leased at the kill are the victim's.
        job_ids = list(await asyncio.gather(*(per_instance[-1].remember(text, namespace) for text in texts)))
        connection = await asyncpg.connect(stack.database_url)
        try:
            async def in_flight() -> list[str]:
                return [row["id"] for row in await connection.fetch(
                    "SELECT id FROM remember_jobs WHERE id = ANY($1::text[]) AND lease_until > now()"
                    " AND status IN ('pending', 'running', 'uploaded')", job_ids,
                )]

            deadline = time.monotonic() + 30
            leased = await in_flight()
            while not leased and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
                leased = await in_flight()
            # Up to 0.2 s more, into the uploads (publish, then the transfer), but the kill comes as soon as a
            # job finishes: on a quick machine the burst must not be over before it (the rest are still held).
            into_uploads = time.monotonic() + 0.2
            while time.monotonic() < into_uploads:
                await asyncio.sleep(0.02)
                still = await in_flight()
                if still and len(still) < len(leased):
                    leased = still  # only what is still held goes into the check below (a loaded machine is slow)
                    break
                if not still:
                    break  # all finished between two looks: kill with the last set seen in flight
                leased = still
            await victim.stop(kill=True)  # SIGKILL the instance and its sidecar, with jobs leased and uploading
            assert not victim.alive
            assert leased, "no job was in flight when the instance was killed"
            deadline = time.monotonic() + 90
            while True:
                rows = await connection.fetch(
                    "SELECT id, status, blob_id, attempts FROM remember_jobs WHERE id = ANY($1::text[])", job_ids
                )
                statuses = {row["id"]: (row["status"], row["blob_id"]) for row in rows}
                attempts = {row["id"]: row["attempts"] for row in rows}
                if len(statuses) == JOBS and all(status in ("done", "failed") for status, _ in statuses.values()):
                    break
                assert time.monotonic() < deadline, statuses
                await asyncio.sleep(0.5)
            assert sorted(status for status, _ in statuses.values()) == ["done"] * JOBS, statuses
            assert any(attempts[job] >= 2 for job in leased), attempts  # the dead instance's jobs were claimed again
            indexed = await connection.fetch(
                "SELECT id, blob_id FROM vector_entries WHERE owner = $1 AND namespace = $2",
                per_instance[0].owner, namespace,
            )
        finally:
            await connection.close()

        blob_of_job = {job: blob for job, (_, blob) in statuses.items()}
        assert len(set(blob_of_job.values())) == JOBS
        assert sorted((row["id"], row["blob_id"]) for row in indexed) == sorted(blob_of_job.items())  # one row per job
        chain = JsonRpcChainReader(stack.info["sui_rpc_url"], http=http)
        owned = await chain.owned_blobs(per_instance[0].owner, stack.info["walrus_package_id"])
        assert collections.Counter(blob.blob_id for blob in owned) == collections.Counter(blob_of_job.values())
