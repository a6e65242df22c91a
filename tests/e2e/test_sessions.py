"""Session chains on the real stack: append/read/list/close, compare-and-append, and two relayers that share
nothing but Walrus and the chain (separate PostgreSQL databases, Redis databases and server wallets)
continuing one session alternately, then a relayer with a wiped database picking it up. Each extra relayer
pays with a server wallet of its own (two processes spending one wallet's gas coins would trip each other)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import types
import uuid
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import nacl.signing
import pytest
import pytest_asyncio
from memwal import MemWal
from memwal.types import MemWalConfig

from chain.address import sui_address
from chain.keys import encode_sui_private_key
from devtools.processes import ChildProcess, free_port
from localnet.cli import create_account
from memwal_enclave import AttestedMemWal, AttestedMemWalSync, SessionConflict
from memwal_enclave.sessions import SessionChains, SessionChainsSync
from tests.conftest import throwaway_database
from tests.e2e.test_negative import Caller

pytestmark = [pytest.mark.e2e, pytest.mark.database, pytest.mark.slow]

SERVER_WALLET_MIST = 10_000_000_000


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def http():
    async with httpx.AsyncClient(timeout=60) as client:
        yield client


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def alice(stack, http):
    return Caller(stack, await create_account(stack.info, label="sessions"), http, [])


def redis_database(url: str, number: int) -> str:
    parts = urlsplit(url)
    if parts.scheme == "unix":
        query = {**dict(parse_qsl(parts.query)), "db": str(number)}
        return urlunsplit(parts._replace(query=urlencode(query)))
    return urlunsplit(parts._replace(path=f"/{number}"))


async def funded_wallet(stack) -> str:
    """A fresh server wallet key, funded on the localnet (no other relayer spends its gas coins)."""
    seed = os.urandom(32)
    address = sui_address(bytes(nacl.signing.SigningKey(seed).verify_key))
    base = str(stack.info.get("admin_url") or stack.info["sui_rpc_url"]).rstrip("/")
    async with httpx.AsyncClient() as http:
        funded = await http.post(f"{base}/_localnet/fund", json={"address": address, "amount": SERVER_WALLET_MIST})
    assert funded.status_code == 200, funded.text
    return encode_sui_private_key(seed)


@contextlib.asynccontextmanager
async def lone_relayer(stack, directory, *, name: str, redis_number: int) -> AsyncIterator[str]:
    """A relayer of its own: a fresh database, its own Redis database and server wallet, the stack's chain and Walrus."""
    wallet = await funded_wallet(stack)
    async with throwaway_database(stack.database_url) as database_url:
        port = free_port()
        env = {
            **stack.relayer_environment(), "BIND": f"127.0.0.1:{port}", "MEMWAL_DATA_DIR": str(directory / name),
            "DATABASE_URL": database_url, "REDIS_URL": redis_database(stack.redis_url, redis_number),
            "SERVER_SUI_PRIVATE_KEYS": wallet,
        }
        process = ChildProcess(name, ["-m", "relayer"], env, directory / f"{name}.log")
        await process.start()
        try:
            async with httpx.AsyncClient() as probe:
                async def healthy() -> bool:
                    try:
                        return (await probe.get(f"http://127.0.0.1:{port}/health", timeout=2.0)).status_code == 200
                    except httpx.HTTPError:
                        return False

                await process.wait_until(healthy, f"{name} did not become healthy (see {directory / name}.log)")
            yield f"http://127.0.0.1:{port}"
        finally:
            await process.stop()


def via(caller: Caller, relayer_url: str) -> Caller:
    """The same delegate key, talking to another relayer."""
    return Caller(types.SimpleNamespace(relayer_url=relayer_url, info=caller.stack.info), caller.account, caller.http, caller.seen)


async def append(caller: Caller, session_id: str, text: str, *, expected_head: int | str | None = None,
                 status: int = 200) -> dict:
    payload: dict = {"session_id": session_id, "role": "user", "text": text}
    if expected_head is not None:
        payload["expected_head"] = expected_head
    response = await caller.call("POST", "/api/sessions/append", payload, session=True)
    assert response.status_code == status, response.text
    return response.json()


async def read(caller: Caller, session_id: str, **window) -> dict:
    response = await caller.call("POST", "/api/sessions/read", {"session_id": session_id, **window}, session=True)
    assert response.status_code == 200, response.text
    return response.json()


class TestOneRelayer:
    async def test_append_read_list_close(self, alice):
        session_id = "chat-" + uuid.uuid4().hex[:8]
        first = await append(alice, session_id, "hello", expected_head=-1)
        assert (first["sequence"], first.get("prev_blob_id")) == (0, None)
        second = await append(alice, session_id, "how are you?", expected_head=0)
        third = await append(alice, session_id, "fine", expected_head=second["blob_id"])
        assert (second["prev_blob_id"], third["prev_blob_id"], third["sequence"]) == (first["blob_id"], second["blob_id"], 2)

        window = await read(alice, session_id, last_n=2)
        assert [(turn["sequence"], turn["text"]) for turn in window["turns"]] == [(1, "how are you?"), (2, "fine")]
        assert (window["head_sequence"], window["head_blob_id"], window["closed"], window["siblings"]) == (2, third["blob_id"], False, [])
        everything = await read(alice, session_id, since_sequence=0)
        assert [turn["text"] for turn in everything["turns"]] == ["hello", "how are you?", "fine"]

        listed = (await alice.call("POST", "/api/sessions/list", {})).json()["sessions"]
        assert {"session_id": session_id, "head_sequence": 2, "head_blob_id": third["blob_id"], "head_claims": 1,
                "closed": False} in listed

        closed = await alice.call("POST", "/api/sessions/close", {"session_id": session_id, "expected_head": 2}, session=True)
        assert closed.status_code == 200 and closed.json()["sequence"] == 3, closed.text
        refused = await append(alice, session_id, "after the end", status=409)
        assert refused["kind"] == "closed"
        final = await read(alice, session_id, last_n=1)
        assert (final["closed"], final["turns"][0]["closed"], final["turns"][0]["role"]) == (True, True, "system")

    async def test_stale_expected_head_is_409_with_the_current_head(self, alice):
        session_id = "cas-" + uuid.uuid4().hex[:8]
        head = await append(alice, session_id, "one", expected_head=-1)
        refused = await append(alice, session_id, "two", expected_head=-1, status=409)
        assert (refused["kind"], refused["head_sequence"], refused["head_blob_id"]) == ("head_moved", 0, head["blob_id"])
        stale = await append(alice, session_id, "two", expected_head="not-the-head", status=409)
        assert stale["head_sequence"] == 0

    async def test_concurrent_appends_with_one_expected_head_make_one_winner(self, alice):
        session_id = "race-" + uuid.uuid4().hex[:8]
        await append(alice, session_id, "start", expected_head=-1)
        payloads = [{"session_id": session_id, "role": "assistant", "text": f"racer {i}", "expected_head": 0} for i in range(2)]
        responses = await asyncio.gather(*(alice.call("POST", "/api/sessions/append", payload, session=True) for payload in payloads))
        assert sorted(response.status_code for response in responses) == [200, 409], [r.text for r in responses]
        window = await read(alice, session_id)
        assert len(window["turns"]) == 2 and window["siblings"] == []

    async def test_client_mistakes(self, alice):
        missing = await alice.call("POST", "/api/sessions/read", {"session_id": "never-" + uuid.uuid4().hex[:8]}, session=True)
        assert missing.status_code == 404, missing.text
        no_session = await alice.call("POST", "/api/sessions/read", {"session_id": "x"})
        assert no_session.status_code == 400, no_session.text
        bad_id = await alice.call("POST", "/api/sessions/append", {"session_id": "has space", "role": "user", "text": "x"}, session=True)
        assert bad_id.status_code == 400, bad_id.text
        both = await alice.call("POST", "/api/sessions/read", {"session_id": "x", "last_n": 1, "since_sequence": 0}, session=True)
        assert both.status_code == 400, both.text
        unknown_close = await alice.call("POST", "/api/sessions/close", {"session_id": "never-" + uuid.uuid4().hex[:8]}, session=True)
        assert unknown_close.status_code == 404, unknown_close.text
        assert all(response.status_code < 500 for response in alice.seen)


class TestTwoRelayers:
    async def test_alternating_relayers_then_a_wiped_database(self, stack, alice, tmp_path):
        session_id = "shared-" + uuid.uuid4().hex[:8]
        texts = [f"turn {i} {uuid.uuid4().hex[:6]}" for i in range(6)]
        async with (lone_relayer(stack, tmp_path, name="relayer-a", redis_number=1) as url_a,
                    lone_relayer(stack, tmp_path, name="relayer-b", redis_number=2) as url_b):
            callers = [via(alice, url_a), via(alice, url_b)]
            for sequence, text in enumerate(texts):
                appended = await append(callers[sequence % 2], session_id, text, expected_head=sequence - 1)
                assert appended["sequence"] == sequence
                window = await read(callers[(sequence + 1) % 2], session_id, last_n=20)  # the other relayer reads it back
                assert [turn["text"] for turn in window["turns"]] == texts[: sequence + 1]
            stale = await append(callers[0], session_id, "late", expected_head=2, status=409)
            assert stale["head_sequence"] == 5
        # A relayer whose database and Redis start empty: the chain alone tells it the session.
        async with lone_relayer(stack, tmp_path, name="relayer-c", redis_number=3) as url_c:
            fresh = via(alice, url_c)
            listed = (await fresh.call("POST", "/api/sessions/list", {})).json()["sessions"]
            assert [item["head_sequence"] for item in listed if item["session_id"] == session_id] == [5]
            await append(fresh, session_id, "after the wipe", expected_head=5)
            window = await read(fresh, session_id, since_sequence=0)
            assert [turn["text"] for turn in window["turns"]] == [*texts, "after the wipe"]


class SdkSessions(SessionChains, MemWal):  # type: ignore[misc]
    """The helpers AttestedMemWal mixes in, on the plain SDK client (the stack speaks HTTP, not attested TLS)."""


class TestClientHelpers:
    async def test_append_read_list_close_and_typed_errors(self, stack):
        client = SdkSessions(MemWalConfig(key=stack.account.delegate_private_key_hex, account_id=stack.account.account_id,
                                          server_url=stack.relayer_url))
        session_id = "sdk-" + uuid.uuid4().hex[:8]
        try:
            first = await client.append_turn(session_id, "hi", expected_head=-1, metadata={"lang": "en"})
            second = await client.append_turn(session_id, "hello back", role="assistant", expected_head=first.blob_id)
            assert (first.sequence, second.sequence, second.prev_blob_id) == (0, 1, first.blob_id)
            window = await client.read_window(session_id, last_n=5)
            assert [(turn.role, turn.text, turn.metadata) for turn in window.turns] == [
                ("user", "hi", {"lang": "en"}), ("assistant", "hello back", {})]
            assert any(item.session_id == session_id and item.head_sequence == 1 for item in await client.list_sessions())
            with pytest.raises(SessionConflict) as stale:
                await client.append_turn(session_id, "late", expected_head=0)
            assert (stale.value.kind, stale.value.details["head_sequence"]) == ("head_moved", 1)
            closed = await client.close_session(session_id)
            assert closed.sequence == 2
            with pytest.raises(SessionConflict, match="closed"):
                await client.append_turn(session_id, "after")
        finally:
            await client.close()
        assert issubclass(AttestedMemWal, SessionChains) and issubclass(AttestedMemWalSync, SessionChainsSync)
