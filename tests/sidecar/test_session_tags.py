"""Session-chain frames through the sidecar: the SessionTag on the wire, the tags on chain, restore's query
leaving frames out (real localnet: Walrus, Sui)."""

from __future__ import annotations

import base64
import uuid
from contextlib import AsyncExitStack

import httpx
import pytest
import pytest_asyncio

from chain.jsonrpc import JsonRpcChainReader
from sidecar.protocol import ProtocolError, SessionTag, UploadRequest
from tests.sidecar.in_process import SIDECAR_TOKEN, sidecar_app

AUTH = {"authorization": f"Bearer {SIDECAR_TOKEN}"}
OWNER = "0x" + "5e" * 32
PACKAGE = "0x" + "01" * 32


class TestSessionTag:
    def test_round_trip(self):
        request = UploadRequest(b"x", OWNER, "memwal-session", PACKAGE, 1, "job", None, SessionTag("chat-1", 7, closed=True))
        assert UploadRequest.from_json(request.to_json()) == request
        assert SessionTag("chat-1", 7, closed=True).pairs() == (
            ("memwal_session_id", "chat-1"), ("memwal_session_seq", "7"), ("memwal_session_closed", "true"))
        plain = UploadRequest(b"x", OWNER, "n", PACKAGE, 1)
        assert "session" not in plain.to_json() and UploadRequest.from_json(plain.to_json()) == plain

    @pytest.mark.parametrize("session", [{"id": "has space", "sequence": 1, "closed": False},
                                         {"id": "ok", "sequence": -1, "closed": False},
                                         {"id": "ok", "sequence": 2**53, "closed": False},
                                         {"id": "ok", "sequence": 1, "closed": "no"}, {"id": 5, "sequence": 1, "closed": False},
                                         "chat"])
    def test_invalid_tags_are_refused(self, session):
        body = {**UploadRequest(b"x", OWNER, "n", PACKAGE, 1).to_json(), "session": session}
        with pytest.raises(ProtocolError, match="session|sequence|closed"):
            UploadRequest.from_json(body)


@pytest.mark.database
class TestTaggedUpload:
    @pytest_asyncio.fixture(loop_scope="session")
    async def api(self, localnet):
        async with AsyncExitStack() as stack:
            app = await sidecar_app(localnet, stack)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://sidecar") as client:
                yield client

    async def test_frame_blobs_carry_session_tags_and_restore_skips_them(self, api, localnet):
        owner = "0x" + uuid.uuid4().hex * 2
        package = localnet["memwal_package_id"]
        uploads = {}
        for name, session in (("frame", {"id": "chat-9", "sequence": 3, "closed": False}), ("memory", None)):
            body = {"data": base64.b64encode(f"{name} {uuid.uuid4()}".encode()).decode(), "owner": owner, "namespace": "n",
                    "packageId": package, "epochs": 1, "jobId": f"{name}-{uuid.uuid4().hex}", "session": session}
            response = await api.post("/walrus/upload", json=body, headers=AUTH)
            assert response.status_code == 200, response.text
            uploads[name] = response.json()["blobId"]
        async with httpx.AsyncClient() as http:
            owned = await JsonRpcChainReader(localnet["sui_rpc_url"], http=http).owned_blobs(owner, localnet["walrus_package_id"])
        tags = {blob.blob_id: dict(blob.metadata) for blob in owned}
        assert (tags[uploads["frame"]]["memwal_session_id"], tags[uploads["frame"]]["memwal_session_seq"]) == ("chat-9", "3")
        assert "memwal_session_id" not in tags[uploads["memory"]]
        queried = await api.post("/walrus/query-blobs", json={"owner": owner, "namespace": "n", "packageId": package}, headers=AUTH)
        assert [blob["blobId"] for blob in queried.json()["blobs"]] == [uploads["memory"]]
