"""sidecar.app: bearer auth (constant-time), body caps and 400s with ``kind``, through httpx.ASGITransport."""

from __future__ import annotations

import base64
import hmac
import os
import time

import httpx
import pytest
import pytest_asyncio

from chain.jsonrpc import JsonRpcChainReader
from memwal_common.environment import SealServerConfig
from memwal_common.secret import Secret
from sidecar._keys import WalletPool  # the sidecar's own construction path (sidecar/__main__.py)
from sidecar.app import MAX_REQUEST_BYTES, SidecarServices, build_app
from sidecar.seal_service import SealService
from sidecar.uploads import UploadService
from sidecar.walrus import WalrusClient

pytestmark = pytest.mark.database

TOKEN = "test-token-" + os.urandom(8).hex()


@pytest_asyncio.fixture(loop_scope="session")
async def api(localnet, http):
    chain = JsonRpcChainReader(localnet["sui_rpc_url"], http=http)
    walrus = WalrusClient(http=http, publisher_url=localnet["walrus_publisher_url"],
                          aggregator_urls=tuple(localnet["walrus_aggregator_urls"]), race_after_ms=50,
                          timeout_seconds=10, max_blob_bytes=1024 * 1024)
    services = SidecarServices(
        token=Secret(TOKEN),
        seal=SealService(chain=chain, http=http, servers=tuple(SealServerConfig(s["objectId"]) for s in localnet["seal_key_servers"]),
                         threshold=localnet["seal_threshold"], package_id=localnet["memwal_package_id"], timeout_seconds=10),
        walrus=walrus,
        uploads=UploadService(chain=chain, walrus=walrus, wallets=WalletPool(list(localnet["server_wallet_keys"])),
                              walrus_package_id=localnet["walrus_package_id"], gas_budget=50_000_000, concurrency=2),
        chain=chain, walrus_package_id=localnet["walrus_package_id"], started=time.monotonic(),
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=build_app(services)), base_url="http://sidecar") as client:
        yield client


AUTH = {"authorization": f"Bearer {TOKEN}"}


class TestSidecarAuth:
    @pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", f"Basic {TOKEN}", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}"])
    async def test_missing_or_wrong_token_is_401_json(self, api, header):
        headers = {"authorization": header} if header is not None else {}
        response = await api.post("/walrus/read", json={"blobIds": ["A" * 43]}, headers=headers)
        assert response.status_code == 401
        assert response.json() == {"error": "Unauthorized", "kind": "Unauthorized"}

    async def test_every_route_but_health_needs_the_token(self, api):
        for path in ("/seal/encrypt", "/seal/decrypt-batch", "/walrus/upload", "/walrus/read", "/walrus/query-blobs"):
            assert (await api.post(path, json={})).status_code == 401
        health = await api.get("/health")
        assert health.status_code == 200 and health.json()["status"] == "ok"

    async def test_constant_time_compare_is_used(self, api, monkeypatch):
        calls = []
        real = hmac.compare_digest

        def spy(a, b):
            calls.append((a, b))
            return real(a, b)

        monkeypatch.setattr(hmac, "compare_digest", spy)
        assert (await api.post("/walrus/read", json={"blobIds": ["A" * 43]}, headers={"authorization": "Bearer nope"})).status_code == 401
        assert calls == [(TOKEN.encode(), b"nope")]

    async def test_scheme_is_case_insensitive(self, api):
        response = await api.post("/walrus/read", json={"blobIds": ["A" * 43]}, headers={"authorization": f"bearer {TOKEN}"})
        assert response.status_code == 200


class TestSidecarInputs:
    async def test_body_over_the_cap(self, api):
        response = await api.post("/walrus/read", content=b" " * (MAX_REQUEST_BYTES + 1), headers=AUTH)
        assert response.status_code == 400 and response.json() == {"error": "request too large", "kind": "BadInput"}

    @pytest.mark.parametrize("content,error", [(b"{", "body must be JSON"), (b"[]", "body must be a JSON object"),
                                               (b"\xff", "body must be JSON")])
    async def test_malformed_body(self, api, content, error):
        response = await api.post("/walrus/read", content=content, headers=AUTH)
        assert response.status_code == 400 and response.json() == {"error": error, "kind": "BadInput"}

    @pytest.mark.parametrize("body", [{}, {"blobIds": []}, {"blobIds": ["A" * 43] * 26}, {"blobIds": ["../etc"]},
                                      {"blobIds": [5]}, {"blobIds": ["x" * 129]}])
    async def test_read_rejects_bad_ids(self, api, body):
        response = await api.post("/walrus/read", json=body, headers=AUTH)
        assert response.status_code == 400 and response.json()["kind"] == "BadInput"

    @pytest.mark.parametrize("change", [{"epochs": 6}, {"epochs": True}, {"data": "%%%"}, {"packageId": "0x1"},
                                        {"packageId": "nonsense"}, {"owner": ""}, {"namespace": 3}])
    async def test_upload_rejects_bad_inputs(self, api, localnet, change):
        body = {"data": base64.b64encode(b"x").decode(), "owner": "0x" + "22" * 32, "namespace": "n",
                "packageId": localnet["memwal_package_id"], "epochs": 1, "jobId": "j"}
        response = await api.post("/walrus/upload", json={**body, **change}, headers=AUTH)
        assert response.status_code == 400 and response.json()["kind"] == "BadInput"

    @pytest.mark.parametrize("items", [[], ["QQ=="] * 26, "QQ==", ["***"]])
    async def test_decrypt_batch_rejects_bad_items(self, api, localnet, items):
        body = {"items": items, "packageId": localnet["memwal_package_id"], "accountId": "0x" + "33" * 32, "session": ""}
        response = await api.post("/seal/decrypt-batch", json=body, headers=AUTH)
        assert response.status_code == 400 and response.json()["kind"] == "BadInput"

    async def test_read_round_trip(self, api, localnet, http):
        data = os.urandom(50)
        put = await http.put(f"{localnet['walrus_publisher_url']}/v1/blobs", params={"epochs": "1"}, content=data)
        blob_id = put.json()["newlyCreated"]["blobObject"]["blobId"]
        response = await api.post("/walrus/read", json={"blobIds": [blob_id, "Z" * 43]}, headers=AUTH)
        assert response.status_code == 200
        assert response.json() == {"blobs": [
            {"blobId": blob_id, "status": "ok", "data": base64.b64encode(data).decode()},
            {"blobId": "Z" * 43, "status": "not_found", "data": None},
        ]}

    async def test_encrypt_round_trip_shape(self, api, localnet):
        body = {"data": base64.b64encode(b"hello").decode(), "owner": "0x" + "44" * 32, "packageId": localnet["memwal_package_id"]}
        response = await api.post("/seal/encrypt", json=body, headers=AUTH)
        assert response.status_code == 200
        assert len(base64.b64decode(response.json()["encryptedData"])) > 5
