"""sidecar.app through httpx.ASGITransport: bearer auth (constant-time), body caps, protocol errors with their
kind, and /blobs/open reading and decrypting against the localnet (real Walrus, Sui and Seal key servers)."""

from __future__ import annotations

import base64
import hmac
import os
from contextlib import AsyncExitStack

import httpx
import pytest
import pytest_asyncio

from chain import bcs
from localnet.cli import create_account
from sealcrypto import KeyServerPublic, encrypt
from sealcrypto.key_server_secret import KeyServerSecret
from sidecar.protocol import MAX_OPEN_BATCH, OpenBlobsReply
from tests.e2e.signing import seal_session_header
from tests.sidecar.in_process import SIDECAR_TOKEN, sidecar_app

pytestmark = pytest.mark.database

MAX_REQUEST_BYTES = 64 * 1024
AUTH = {"authorization": f"Bearer {SIDECAR_TOKEN}"}
QUERY = "/walrus/query-blobs"


@pytest_asyncio.fixture(loop_scope="session")
async def api(localnet):
    async with AsyncExitStack() as stack:
        app = await sidecar_app(localnet, stack, SIDECAR_MAX_REQUEST_BYTES=str(MAX_REQUEST_BYTES))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sidecar") as client:
            yield client


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def account(localnet):
    return await create_account(localnet, label="sidecar-test")


def query_body(localnet) -> dict:
    return {"owner": "0x" + "22" * 32, "namespace": "n", "packageId": localnet["memwal_package_id"]}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class TestSidecarAuth:
    @pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", f"Basic {SIDECAR_TOKEN}", f"Bearer {SIDECAR_TOKEN}x",
                                        f"Bearer {SIDECAR_TOKEN[:-1]}"])
    async def test_missing_or_wrong_token_is_401_json(self, api, localnet, header):
        headers = {"authorization": header} if header is not None else {}
        response = await api.post(QUERY, json=query_body(localnet), headers=headers)
        assert response.status_code == 401
        assert response.json() == {"error": "Unauthorized", "kind": "Unauthorized"}

    async def test_every_route_but_health_needs_the_token(self, api):
        for path in ("/seal/encrypt", "/walrus/upload", "/blobs/open", QUERY):
            assert (await api.post(path, json={})).status_code == 401
        health = await api.get("/health")
        assert health.status_code == 200 and health.json()["status"] == "ok"

    async def test_removed_routes_are_gone(self, api):
        for path in ("/seal/decrypt-batch", "/walrus/read"):
            assert (await api.post(path, json={}, headers=AUTH)).status_code == 404

    async def test_constant_time_compare_is_used(self, api, localnet, monkeypatch):
        calls = []
        real = hmac.compare_digest

        def spy(a, b):
            calls.append((a, b))
            return real(a, b)

        monkeypatch.setattr(hmac, "compare_digest", spy)
        response = await api.post(QUERY, json=query_body(localnet), headers={"authorization": "Bearer nope"})
        assert response.status_code == 401
        assert calls == [(SIDECAR_TOKEN.encode(), b"nope")]

    async def test_scheme_is_case_insensitive(self, api, localnet):
        response = await api.post(QUERY, json=query_body(localnet), headers={"authorization": f"bearer {SIDECAR_TOKEN}"})
        assert response.status_code == 200 and response.json() == {"blobs": [], "total": 0, "capped": False}


class TestSidecarInputs:
    async def test_body_over_the_cap(self, api):
        response = await api.post(QUERY, content=b" " * (MAX_REQUEST_BYTES + 1), headers=AUTH)
        assert response.status_code == 400 and response.json() == {"error": "request too large", "kind": "BadInput"}

    @pytest.mark.parametrize("content,error", [(b"{", "body must be JSON"), (b"[]", "body must be a JSON object"),
                                               (b"\xff", "body must be JSON"), (b"[" * 10_000 + b"]" * 10_000, "body must be JSON")])
    async def test_malformed_body(self, api, content, error):
        response = await api.post(QUERY, content=content, headers=AUTH)
        assert response.status_code == 400 and response.json() == {"error": error, "kind": "BadInput"}

    @pytest.mark.parametrize("blob_ids", [[], ["A" * 43] * 2, [f"A{i:042d}" for i in range(MAX_OPEN_BATCH + 1)], ["../etc"],
                                          [5], ["x" * 129], "A" * 43])
    async def test_open_rejects_bad_ids(self, api, localnet, blob_ids):
        body = {"blobIds": blob_ids, "packageId": localnet["memwal_package_id"], "accountId": "0x" + "33" * 32, "session": ""}
        response = await api.post("/blobs/open", json=body, headers=AUTH)
        assert response.status_code == 400 and response.json()["kind"] == "BadInput"

    @pytest.mark.parametrize("change", [{"epochs": 6}, {"epochs": True}, {"data": "%%%"}, {"packageId": "0x1"},
                                        {"packageId": "nonsense"}, {"owner": ""}, {"namespace": 3}])
    async def test_upload_rejects_bad_inputs(self, api, localnet, change):
        body = {"data": b64(b"x"), "owner": "0x" + "22" * 32, "namespace": "n",
                "packageId": localnet["memwal_package_id"], "epochs": 1, "jobId": "j"}
        response = await api.post("/walrus/upload", json={**body, **change}, headers=AUTH)
        assert response.status_code == 400 and response.json()["kind"] == "BadInput"

    async def test_encrypt_round_trip_shape(self, api, localnet):
        body = {"data": b64(b"hello"), "owner": "0x" + "44" * 32, "packageId": localnet["memwal_package_id"]}
        response = await api.post("/seal/encrypt", json=body, headers=AUTH)
        assert response.status_code == 200
        assert len(base64.b64decode(response.json()["encryptedData"])) > 5


class TestOpenBlobs:
    async def encrypted_blob(self, api, localnet, http, owner: str, text: bytes) -> str:
        encrypted = await api.post("/seal/encrypt", json={"data": b64(text), "owner": owner,
                                                           "packageId": localnet["memwal_package_id"]}, headers=AUTH)
        return await self.raw_blob(localnet, http, base64.b64decode(encrypted.json()["encryptedData"]))

    @staticmethod
    async def raw_blob(localnet, http, data: bytes) -> str:
        put = await http.put(f"{localnet['walrus_publisher_url']}/v1/blobs", params={"epochs": "1"}, content=data)
        return put.json()["newlyCreated"]["blobObject"]["blobId"]

    def request(self, localnet, account, blob_ids: list[str], *, session: str | None = None) -> dict:
        seed = bytes.fromhex(account.delegate_private_key_hex)
        return {"blobIds": blob_ids, "packageId": localnet["memwal_package_id"], "accountId": account.account_id,
                "session": seal_session_header(seed, localnet["memwal_package_id"]) if session is None else session}

    async def test_opened_not_found_and_corrupt_in_one_call(self, api, localnet, http, account):
        opened = await self.encrypted_blob(api, localnet, http, account.owner_address, b"tea at noon")
        corrupt = await self.raw_blob(localnet, http, os.urandom(80))
        response = await api.post("/blobs/open", json=self.request(localnet, account, [opened, "Z" * 43, corrupt]), headers=AUTH)
        assert response.status_code == 200
        reply = OpenBlobsReply.from_json(response.json())
        assert [(b.blob_id, b.status.value, b.plaintext) for b in reply.blobs] == [
            (opened, "opened", b"tea at noon"), ("Z" * 43, "not_found", None), (corrupt, "corrupt", None),
        ]
        assert reply.blobs[0].ciphertext_bytes > len(b"tea at noon")
        assert set(response.json()["blobs"][0]) == {"blobId", "status", "plaintext", "ciphertextBytes"}  # no ciphertext

    async def test_unavailable_when_no_aggregator_answers(self, api, localnet, http, account, faults):
        blob_id = await self.encrypted_blob(api, localnet, http, account.owner_address, b"x")
        await faults(0, {"unavailable": True})
        await faults(1, {"lostBlobIds": [blob_id]})
        response = await api.post("/blobs/open", json=self.request(localnet, account, [blob_id]), headers=AUTH)
        assert response.json() == {"blobs": [{"blobId": blob_id, "status": "unavailable"}]}

    async def test_intact_blobs_for_key_servers_not_configured_here_are_unavailable_not_corrupt(
        self, api, localnet, http, account
    ):
        # e.g. the deployment switched key servers without listing the old ones in SEAL_LEGACY_DECRYPT_KEY_SERVERS:
        # the memory is intact, so the relayer must keep its index row.
        servers = [KeyServerPublic(os.urandom(32), KeyServerSecret.generate(os.urandom).public_key) for _ in range(2)]
        sealed = encrypt(package_id=bcs.address(localnet["memwal_package_id"]), inner_id=bcs.address(account.owner_address),
                         key_servers=servers, threshold=2, plaintext=b"kept")  # fmt: skip
        blob_id = await self.raw_blob(localnet, http, sealed)
        response = await api.post("/blobs/open", json=self.request(localnet, account, [blob_id]), headers=AUTH)
        assert response.json() == {"blobs": [{"blobId": blob_id, "status": "unavailable"}]}

    @pytest.mark.parametrize("session", ["", "bm90IGEgc2Vzc2lvbg=="])
    async def test_bad_session_is_invalid_session(self, api, localnet, account, session):
        response = await api.post("/blobs/open", json=self.request(localnet, account, ["Z" * 43], session=session), headers=AUTH)
        assert response.status_code == 400 and response.json()["kind"] == "InvalidSession"

    async def test_unknown_account_is_access_denied(self, api, localnet, http, account):
        blob_id = await self.encrypted_blob(api, localnet, http, account.owner_address, b"x")
        body = {**self.request(localnet, account, [blob_id]), "accountId": "0x" + "ab" * 32}
        response = await api.post("/blobs/open", json=body, headers=AUTH)
        assert response.status_code == 403 and response.json()["kind"] == "AccessDenied"

    async def test_non_seal_blobs_are_corrupt_without_asking_anyone(self, api, localnet, http, account):
        blob_id = await self.raw_blob(localnet, http, b"plain bytes, not a Seal object")
        body = {**self.request(localnet, account, [blob_id]), "accountId": "0x" + "ab" * 32}
        response = await api.post("/blobs/open", json=body, headers=AUTH)
        assert response.status_code == 200 and response.json()["blobs"] == [{"blobId": blob_id, "status": "corrupt"}]
