"""Fault injection against the plain stack as separate processes: real PostgreSQL and Redis servers are stopped
and started again, the sidecar and the relayer are killed. Every outage is a 503 with a JSON body and
``Retry-After`` (``x-auth-error: AUTH_UPSTREAM_UNAVAILABLE`` while authenticating), /health says which dependency
is down, and the stack recovers by itself once it is back; the key holder never outlives the relayer; a request
captured before the nonce store lost its keys is never accepted again.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
import redis.asyncio as redis

from devtools.devstack import DevStack
from devtools.embedded_databases import start_embedded_postgres, start_embedded_redis
from devtools.processes import free_port
from localnet.cli import create_account
from tests.e2e.conftest import E2E_RELAYER_ENV
from tests.e2e.signing import body_of
from tests.e2e.test_negative import Caller

pytestmark = [pytest.mark.e2e, pytest.mark.database, pytest.mark.slow]

OUTAGE_ENV = {
    **E2E_RELAYER_ENV,
    "HEALTH_INTERVAL_SECS": "1",
    "HEALTH_PROBE_TIMEOUT_SECS": "1",
    "DATABASE_CONNECT_TIMEOUT_SECS": "2",
    "REDIS_TIMEOUT_SECS": "1",
}
RECOVERY_SECONDS = 60.0  # generous: a bound on the loop below, not a claim about speed


class Servers:
    """PostgreSQL and Redis of this module only, on loopback ports, so they can be stopped and started again."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.postgres_port = free_port()
        self.redis_port = free_port()
        self.postgres = start_embedded_postgres(root / "postgres", port=self.postgres_port, settings={"fsync": "off"})
        self.redis = start_embedded_redis(root / "redis", port=self.redis_port)

    def restart_postgres(self) -> None:
        self.postgres = start_embedded_postgres(self.root / "postgres", port=self.postgres_port, settings={"fsync": "off"})

    def restart_redis(self) -> None:
        self.redis = start_embedded_redis(self.root / "redis", port=self.redis_port)

    def stop(self) -> None:
        self.postgres.stop()
        self.redis.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def servers():
    # Not under pytest's basetemp: as root PostgreSQL runs as another user, and a pytest session starting
    # meanwhile resets pytest-of-<user> to 0700 (tests/conftest.py says more).
    root = Path(tempfile.mkdtemp(prefix="memwal-outage-"))
    running = await asyncio.to_thread(Servers, root)
    try:
        yield running
    finally:
        await asyncio.to_thread(running.stop)
        shutil.rmtree(root, ignore_errors=True)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def stack(tmp_path_factory, servers):
    async with DevStack(
        tmp_path_factory.mktemp("outage-stack"), database_url=servers.postgres.url, redis_url=servers.redis.url,
        relayer_env=OUTAGE_ENV,
    ) as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def http():
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


@pytest_asyncio.fixture(loop_scope="session")
async def caller(stack, http):
    return Caller(stack, await create_account(stack.info, label="outage"), http, [])


async def until(condition: Callable[[], Awaitable[bool]], what: str, timeout: float = RECOVERY_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, f"not within {timeout:g} s: {what}"
        await asyncio.sleep(0.2)


async def health(stack, http) -> tuple[int, dict]:
    response = await http.get(f"{stack.relayer_url}/health")
    return response.status_code, response.json()


async def dependency_is(stack, http, name: str, ok: bool) -> bool:
    status, body = await health(stack, http)
    return body["dependencies"][name]["ok"] is ok and (status == 200) is ok and body["write_ready"] is ok


def assert_outage(response: httpx.Response, *, during_auth: bool) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"].isdigit()
    assert response.json()["error"].startswith("Upstream temporarily unavailable (traceId: ")
    assert (response.headers.get("x-auth-error") == "AUTH_UPSTREAM_UNAVAILABLE") is during_auth


def sidecars_of(relayer_pid: int) -> list[int]:
    children = []
    for task in Path(f"/proc/{relayer_pid}/task").iterdir():
        children += [int(child) for child in (task / "children").read_text().split()]
    return [pid for pid in children if running(pid) and b"sidecar" in Path(f"/proc/{pid}/cmdline").read_bytes()]


def sidecar_of(relayer_pid: int) -> int:
    [sidecar] = sidecars_of(relayer_pid)
    return sidecar


def running(pid: int) -> bool:
    """A live process; a zombie nobody has reaped yet counts as gone."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


async def outage_and_recovery(stack, http, caller, dependency: str, stop: Callable[[], None], start: Callable[[], None],
                              *, during_auth: bool) -> None:
    """Stop ``dependency``: a signed request is a 503 (with AUTH_UPSTREAM_UNAVAILABLE if ``during_auth``) and
    /health says so; start it again: the relayer serves again by itself (no restart, no operator)."""
    await asyncio.to_thread(stop)
    try:
        assert_outage(await caller.call("POST", "/api/stats", {"namespace": "default"}), during_auth=during_auth)
        await until(lambda: dependency_is(stack, http, dependency, False), f"/health reports {dependency} down")
    finally:
        await asyncio.to_thread(start)
    await until(lambda: dependency_is(stack, http, dependency, True), f"/health reports {dependency} back")

    async def served() -> bool:
        return (await caller.call("POST", "/api/stats", {"namespace": "default"})).status_code == 200

    await until(served, "a request is served again")


class TestPostgresOutage:
    async def test_stopped_postgres_is_503_and_recovers_when_it_is_back(self, stack, servers, caller, http):
        assert (await caller.stats("default"))["memory_count"] == 0
        # The caller's account is cached in-process, so authentication needs no database: the handler's query is
        # what meets the outage.
        await outage_and_recovery(stack, http, caller, "database", servers.postgres.stop, servers.restart_postgres,
                                  during_auth=False)
        job_id = await caller.remember("written after the outage", "after-postgres")
        assert (await caller.wait_done(job_id))["status"] == "done"


class TestRedisOutage:
    async def test_stopped_redis_is_503_the_sdk_retries_and_recovers(self, stack, servers, caller, http):
        await outage_and_recovery(stack, http, caller, "redis", servers.redis.stop, servers.restart_redis, during_auth=True)

    async def test_a_request_captured_before_a_redis_restart_is_not_accepted_again(self, servers, caller):
        body = body_of({"text": "only once", "namespace": "replay-restart"})
        captured = caller.sign("POST", "/api/remember", body)
        assert (await caller.send("POST", "/api/remember", body, headers=captured)).status_code == 202
        await asyncio.to_thread(servers.redis.stop)
        await asyncio.to_thread(servers.restart_redis)
        replay = await caller.send("POST", "/api/remember", body, headers=captured)
        assert (replay.status_code, replay.content) == (401, b"")
        assert (await caller.stats("replay-restart"))["memory_count"] <= 1  # never a second memory

    async def test_a_request_captured_before_a_flushall_is_not_accepted_again(self, servers, caller):
        body = body_of({"namespace": "default"})
        captured = caller.sign("POST", "/api/stats", body, timestamp=int(time.time()) - 1)
        assert (await caller.send("POST", "/api/stats", body, headers=captured)).status_code == 200
        client = redis.Redis.from_url(servers.redis.url)
        try:
            await client.flushall()
        finally:
            await client.aclose()
        replay = await caller.send("POST", "/api/stats", body, headers=captured)
        assert (replay.status_code, replay.headers.get("x-auth-error")) == (401, "ERR_SIGNED_BEFORE_REPLAY_EPOCH")
        assert (await caller.call("POST", "/api/stats", {"namespace": "default"})).status_code == 200  # fresh ones pass


class TestSidecarOutage:
    async def test_killed_sidecar_is_restarted_and_requests_are_503_meanwhile(self, stack, caller, http):
        relayer = stack.relayer.process
        sidecar = sidecar_of(relayer.pid)
        os.kill(sidecar, signal.SIGKILL)
        killed_at = datetime.now(UTC)
        assert_outage(await caller.call("POST", "/api/remember", {"text": "while the key holder is down"}), during_auth=False)

        async def restarted_and_probed() -> bool:
            # A probe made after the kill says a sidecar answers, and it is a new process.
            status, body = await health(stack, http)
            state = body["dependencies"]["sidecar"]
            probed_after = state.get("checked_at") and datetime.fromisoformat(state["checked_at"].replace("Z", "+00:00")) > killed_at
            return bool(probed_after and state["ok"] and status == 200 and [p for p in sidecars_of(relayer.pid) if p != sidecar])

        await until(restarted_and_probed, "the relayer restarts its sidecar and /health sees it")
        assert stack.relayer.alive and stack.relayer.process.pid == relayer.pid  # the relayer itself stayed up
        accepted: list[str] = []

        async def remembers() -> bool:
            response = await caller.call("POST", "/api/remember", {"text": "after the sidecar came back", "namespace": "after"})
            if response.status_code == 202:
                accepted.append(response.json()["job_id"])
            return bool(accepted)

        await until(remembers, "a remember is accepted again")
        assert (await caller.wait_done(accepted[0]))["status"] == "done"


class TestNoOrphanedKeyHolder:
    async def test_sidecar_dies_within_a_second_of_a_sigkilled_relayer(self, stack, http):
        relayer = stack.relayer.process
        sidecar = sidecar_of(relayer.pid)
        try:
            os.kill(relayer.pid, signal.SIGKILL)  # the relayer only, not its process group
            await relayer.wait()  # the kernel has torn the relayer down: from here its children are told
            died = time.monotonic()
            while running(sidecar):
                assert time.monotonic() - died < 1.0, "the sidecar outlived its relayer"
                await asyncio.sleep(0.01)
        finally:
            await stack.stop_relayer()
            await stack.start_relayer()  # leave a healthy stack behind
        assert (await http.get(f"{stack.relayer_url}/health")).status_code == 200


class TestClientNonceIsNotBurnedByOutages:
    async def test_an_outage_during_auth_leaves_the_nonce_usable(self, stack, servers, caller):
        # The SDK retries 503 + AUTH_UPSTREAM_UNAVAILABLE with the same signed request only if nothing was recorded.
        body = body_of({"namespace": "default"})
        headers = caller.sign("POST", "/api/stats", body, nonce=str(uuid.uuid4()))
        await asyncio.to_thread(servers.redis.stop)
        try:
            assert_outage(await caller.send("POST", "/api/stats", body, headers=headers), during_auth=True)
        finally:
            await asyncio.to_thread(servers.restart_redis)

        async def served() -> bool:
            return (await caller.send("POST", "/api/stats", body, headers=headers)).status_code == 200

        await until(served, "the same signed request is accepted once Redis is back")
