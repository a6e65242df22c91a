"""Walrus publisher and aggregator stand-ins, exercised over real loopback sockets."""

import asyncio
import base64
import hashlib
import time

import httpx
import pytest

from localnet.errors import BlobTooLarge, InvalidBlobId
from localnet.runner import serving
from localnet.walrus import (
    DEFAULT_PUBLISHER_ADDRESS,
    BlobStore,
    Faults,
    OwnedBlob,
    blob_id_for,
    build_aggregator_app,
    build_publisher_app,
    check_blob_id,
)

CAP = 64 * 1024
OWNER = "0x" + "ab" * 32


class BlobObjects:
    """Records what the publisher asked the chain to create (stands for the localnet world)."""

    def __init__(self):
        self.created = []
        self.objects = {}  # object id -> [blob id, owner, end epoch, deletable]

    def create_blob(self, blob_id, size, owner, *, end_epoch, deletable):
        self.created.append((blob_id, size, owner, end_epoch))
        object_id = "0x" + hashlib.sha256(f"{blob_id}/{len(self.created)}".encode()).hexdigest()
        self.objects[object_id] = [blob_id, owner, end_epoch, deletable]
        return object_id

    def owned_blob(self, owner, blob_id):
        for object_id, (stored_blob, stored_owner, end_epoch, deletable) in self.objects.items():
            if (stored_blob, stored_owner) == (blob_id, owner):
                return OwnedBlob(object_id, end_epoch, deletable)
        return None


@pytest.fixture
async def walrus(tmp_path):
    store = BlobStore(tmp_path / "blobs", max_blob_bytes=CAP)
    objects = BlobObjects()
    publisher_app = build_publisher_app(store, objects, max_blob_bytes=CAP, current_epoch=lambda: 7)
    first_app, second_app = build_aggregator_app(store, name="a"), build_aggregator_app(store, name="b")
    async with serving(publisher_app, name="publisher") as publisher, \
            serving(first_app, name="aggregator-a") as first, serving(second_app, name="aggregator-b") as second:
        async with httpx.AsyncClient(timeout=10) as http:
            yield {"http": http, "publisher": publisher, "aggregators": [first, second], "objects": objects,
                   "store": store, "apps": [first_app, second_app], "directory": tmp_path / "blobs"}


class TestBlobId:
    def test_is_unpadded_base64url_of_32_bytes(self):
        blob_id = blob_id_for(b"some other string")
        assert len(blob_id) == 43
        assert base64.urlsafe_b64decode(blob_id + "=") == hashlib.sha256(b"fake-walrus" + b"some other string").digest()

    def test_differs_per_content(self):
        assert blob_id_for(b"a") != blob_id_for(b"b")

    @pytest.mark.parametrize("bad", ["", "short", "../" + "a" * 40, "a" * 42 + "=", "a" * 44, "a" * 42 + "/"])
    def test_rejects_malformed(self, bad):
        with pytest.raises(InvalidBlobId, match="43 characters"):
            check_blob_id(bad)


class TestBlobStore:
    def test_round_trip_and_persistence(self, tmp_path):
        blob_id = BlobStore(tmp_path).put(b"hello")
        assert BlobStore(tmp_path).get(blob_id) == b"hello"

    def test_leaves_no_temporary_files(self, tmp_path):
        BlobStore(tmp_path).put(b"hello")
        assert not [path for path in tmp_path.rglob(".incoming-*")]

    def test_cap(self, tmp_path):
        with pytest.raises(BlobTooLarge, match="exceeds the cap"):
            BlobStore(tmp_path, max_blob_bytes=4).put(b"12345")

    def test_unknown_and_malformed_ids_are_absent(self, tmp_path):
        store = BlobStore(tmp_path)
        assert store.get(blob_id_for(b"never stored")) is None
        assert store.get("../../etc/passwd") is None


class TestPublisher:
    async def test_newly_created_shape(self, walrus):
        response = await walrus["http"].put(f"{walrus['publisher']}/v1/blobs?epochs=3&send_object_to={OWNER}",
                                            content=b"memory one")
        assert response.status_code == 200
        created = response.json()["newlyCreated"]
        blob = created["blobObject"]
        assert blob["blobId"] == blob_id_for(b"memory one")
        assert blob["size"] == 10 and blob["encodingType"] == "RS2" and blob["deletable"] is True
        assert blob["registeredEpoch"] == 7 and blob["certifiedEpoch"] == 7
        assert blob["storage"]["startEpoch"] == 7 and blob["storage"]["endEpoch"] == 10
        assert blob["storage"]["storageSize"] == created["resourceOperation"]["registerFromScratch"]["encodedLength"]
        assert created["resourceOperation"]["registerFromScratch"]["epochsAhead"] == 3
        assert isinstance(created["cost"], int) and created["cost"] > 0
        assert walrus["objects"].created == [(blob["blobId"], 10, OWNER, 10)]
        assert blob["id"].startswith("0x") and len(blob["id"]) == 66

    async def test_deletable_repeat_names_the_object_the_publisher_owns(self, walrus):
        url = f"{walrus['publisher']}/v1/blobs"
        first = (await walrus["http"].put(url, content=b"same")).json()["newlyCreated"]["blobObject"]
        assert first["deletable"] is True  # the default since Walrus v1.33
        again = await walrus["http"].put(url, content=b"same")
        certified = again.json()["alreadyCertified"]
        assert certified == {"blobId": first["blobId"], "object": first["id"], "endEpoch": 8}
        forced = (await walrus["http"].put(url + "?force=true", content=b"same")).json()["newlyCreated"]
        assert forced["blobObject"]["id"] != first["id"]
        assert [entry[2] for entry in walrus["objects"].created] == [DEFAULT_PUBLISHER_ADDRESS] * 2

    async def test_concurrent_stores_of_one_content_register_it_once(self, walrus):
        """The files are written off the event loop; storing and certifying one content stays one step."""
        url = f"{walrus['publisher']}/v1/blobs"
        answers = [response.json() for response in await asyncio.gather(
            *(walrus["http"].put(url, content=b"twice at once") for _ in range(4)))]
        assert sorted(next(iter(answer)) for answer in answers) == ["alreadyCertified"] * 3 + ["newlyCreated"]
        assert len(walrus["objects"].created) == 1

    async def test_deletable_blob_handed_away_is_stored_again(self, walrus):
        url = f"{walrus['publisher']}/v1/blobs?send_object_to={OWNER}"
        first = (await walrus["http"].put(url, content=b"mine")).json()["newlyCreated"]["blobObject"]
        again = (await walrus["http"].put(url, content=b"mine")).json()
        assert again["newlyCreated"]["blobObject"]["id"] != first["id"]

    async def test_permanent_repeat_names_the_certification_event(self, walrus):
        url = f"{walrus['publisher']}/v1/blobs?permanent=true"
        first = (await walrus["http"].put(url, content=b"forever")).json()["newlyCreated"]["blobObject"]
        certified = (await walrus["http"].put(url, content=b"forever")).json()["alreadyCertified"]
        assert certified["blobId"] == first["blobId"] and certified["endEpoch"] == 8 and "object" not in certified
        assert certified["event"]["eventSeq"] == "0" and len(certified["event"]["txDigest"]) >= 32

    async def test_longer_storage_than_certified_creates_a_new_blob(self, walrus):
        url = f"{walrus['publisher']}/v1/blobs"
        await walrus["http"].put(url, content=b"extend me")
        longer = await walrus["http"].put(url + "?epochs=5", content=b"extend me")
        assert "newlyCreated" in longer.json()

    async def test_permanent(self, walrus):
        response = await walrus["http"].put(f"{walrus['publisher']}/v1/blobs?permanent=true", content=b"p")
        assert response.json()["newlyCreated"]["blobObject"]["deletable"] is False

    async def test_too_large_is_413(self, walrus):
        response = await walrus["http"].put(f"{walrus['publisher']}/v1/blobs", content=b"x" * (CAP + 1))
        assert response.status_code == 413
        error = response.json()["error"]
        assert error["code"] == 413 and error["details"][0]["reason"] == "BLOB_TOO_LARGE"
        assert walrus["objects"].created == []

    async def test_too_large_without_content_length_is_413(self, walrus):
        async def chunks():
            for _ in range(CAP // 1024 + 2):
                yield b"y" * 1024

        response = await walrus["http"].put(f"{walrus['publisher']}/v1/blobs", content=chunks())
        assert response.status_code == 413

    @pytest.mark.parametrize("query", ["epochs=0", "epochs=54", "epochs=x", "send_object_to=nope",
                                       f"send_object_to={OWNER}&share=true", "force=maybe",
                                       "permanent=true&deletable=true"])
    async def test_bad_parameters_are_400(self, walrus, query):
        response = await walrus["http"].put(f"{walrus['publisher']}/v1/blobs?{query}", content=b"z")
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["status"] == "INVALID_ARGUMENT" and error["details"][0]["domain"] == "daemon.walrus.space"
        assert walrus["objects"].created == []

    async def test_health(self, walrus):
        response = await walrus["http"].get(f"{walrus['publisher']}/v1/api")
        assert response.status_code == 200 and "/v1/blobs" in response.json()["paths"]


class TestAggregator:
    async def test_round_trip_on_both_aggregators(self, walrus):
        blob_id = (await walrus["http"].put(f"{walrus['publisher']}/v1/blobs", content=b"\x00\x01 bytes")).json()[
            "newlyCreated"]["blobObject"]["blobId"]
        for aggregator in walrus["aggregators"]:
            response = await walrus["http"].get(f"{aggregator}/v1/blobs/{blob_id}?skip_consistency_check=true")
            assert response.status_code == 200
            assert response.content == b"\x00\x01 bytes"
            assert response.headers["content-type"] == "application/octet-stream"

    async def test_survives_restart(self, walrus):
        blob_id = (await walrus["http"].put(f"{walrus['publisher']}/v1/blobs", content=b"durable")).json()[
            "newlyCreated"]["blobObject"]["blobId"]
        fresh_store = BlobStore(walrus["directory"])
        async with serving(build_aggregator_app(fresh_store, name="c"), name="restarted") as aggregator:
            response = await walrus["http"].get(f"{aggregator}/v1/blobs/{blob_id}")
        assert response.content == b"durable"
        republished = build_publisher_app(fresh_store, walrus["objects"], max_blob_bytes=CAP, current_epoch=lambda: 7)
        async with serving(republished, name="restarted-publisher") as publisher:
            again = await walrus["http"].put(f"{publisher}/v1/blobs", content=b"durable")
        assert again.json()["alreadyCertified"]["blobId"] == blob_id

    async def test_freshly_certified_blob_is_missing_for_a_while(self, tmp_path):
        now = [100.0]
        store = BlobStore(tmp_path / "fresh", max_blob_bytes=CAP)
        publisher_app = build_publisher_app(store, BlobObjects(), max_blob_bytes=CAP, current_epoch=lambda: 7,
                                            clock=lambda: now[0])
        aggregator_app = build_aggregator_app(store, name="slow", not_found_after_certification_seconds=2.0,
                                              clock=lambda: now[0])
        async with serving(publisher_app, name="p") as publisher, serving(aggregator_app, name="a") as aggregator, \
                httpx.AsyncClient() as http:
            blob_id = (await http.put(f"{publisher}/v1/blobs", content=b"new")).json()["newlyCreated"]["blobObject"]["blobId"]
            assert (await http.get(f"{aggregator}/v1/blobs/{blob_id}")).status_code == 404
            now[0] += 2.0
            response = await http.get(f"{aggregator}/v1/blobs/{blob_id}")
        assert response.status_code == 200 and response.content == b"new"

    async def test_missing_blob_is_404_status(self, walrus):
        response = await walrus["http"].get(f"{walrus['aggregators'][0]}/v1/blobs/{blob_id_for(b'absent')}")
        assert response.status_code == 404
        error = response.json()["error"]
        assert error == {"code": 404, "status": "NOT_FOUND", "message": error["message"],
                         "details": [{"@type": "ErrorInfo", "reason": "BLOB_NOT_FOUND",
                                      "domain": "daemon.walrus.space", "metadata": {}}]}

    async def test_malformed_id_is_400(self, walrus):
        response = await walrus["http"].get(f"{walrus['aggregators'][0]}/v1/blobs/not-a-blob-id")
        assert response.status_code == 400

    @pytest.mark.parametrize(("header", "status", "body", "content_range"), [
        ("bytes=2-5", 206, b"2345", "bytes 2-5/10"),
        ("bytes=7-", 206, b"789", "bytes 7-9/10"),
        ("bytes=-2", 206, b"89", "bytes 8-9/10"),
        ("bytes=8-100", 206, b"89", "bytes 8-9/10"),
        ("bytes=10-12", 416, b"", "bytes */10"),
        ("bytes=0-1,4-5", 200, b"0123456789", None),
        ("items=0-1", 200, b"0123456789", None),
    ])
    async def test_range(self, walrus, header, status, body, content_range):
        blob_id = walrus["store"].put(b"0123456789")
        response = await walrus["http"].get(f"{walrus['aggregators'][0]}/v1/blobs/{blob_id}", headers={"Range": header})
        assert response.status_code == status
        assert response.content == body
        assert response.headers.get("content-range") == content_range


class TestFaults:
    def test_parse_rejects_unknown_fields_and_bad_types(self):
        with pytest.raises(ValueError, match="faults are an object"):
            Faults.from_json({"delay": 5})
        with pytest.raises(ValueError, match="delayMs"):
            Faults.from_json({"delayMs": -1})
        with pytest.raises(ValueError, match="lostBlobIds"):
            Faults.from_json({"lostBlobIds": "abc"})
        with pytest.raises(ValueError, match="booleans"):
            Faults.from_json({"unavailable": 1})

    async def test_unavailable_then_cleared(self, walrus):
        blob_id = walrus["store"].put(b"five oh three")
        first = walrus["aggregators"][0]
        set_response = await walrus["http"].post(f"{first}/_localnet/faults", json={"unavailable": True})
        assert set_response.json()["unavailable"] is True
        down = await walrus["http"].get(f"{first}/v1/blobs/{blob_id}")
        assert down.status_code == 503 and down.json()["error"]["status"] == "UNAVAILABLE"
        other = await walrus["http"].get(f"{walrus['aggregators'][1]}/v1/blobs/{blob_id}")
        assert other.status_code == 200
        await walrus["http"].delete(f"{first}/_localnet/faults")
        assert (await walrus["http"].get(f"{first}/v1/blobs/{blob_id}")).status_code == 200

    async def test_lost_blobs_are_404_only_there(self, walrus):
        kept, lost = walrus["store"].put(b"kept"), walrus["store"].put(b"lost")
        first, second = walrus["aggregators"]
        await walrus["http"].post(f"{first}/_localnet/faults", json={"lostBlobIds": [lost]})
        assert (await walrus["http"].get(f"{first}/v1/blobs/{lost}")).status_code == 404
        assert (await walrus["http"].get(f"{first}/v1/blobs/{kept}")).status_code == 200
        assert (await walrus["http"].get(f"{second}/v1/blobs/{lost}")).status_code == 200
        await walrus["http"].post(f"{first}/_localnet/faults", json={"loseAllBlobs": True})
        assert (await walrus["http"].get(f"{first}/v1/blobs/{kept}")).status_code == 404

    async def test_delay_lets_the_other_aggregator_win_a_race(self, walrus):
        blob_id = walrus["store"].put(b"race")
        slow, fast = walrus["aggregators"]
        await walrus["http"].post(f"{slow}/_localnet/faults", json={"delayMs": 400})
        started = time.monotonic()
        winners = []

        async def fetch(base):
            response = await walrus["http"].get(f"{base}/v1/blobs/{blob_id}")
            winners.append(response.headers["x-localnet-aggregator"])
            return time.monotonic() - started

        slow_time, fast_time = await asyncio.gather(fetch(slow), fetch(fast))
        assert winners == ["b", "a"]
        assert slow_time >= 0.4 > fast_time

    async def test_bad_fault_body_is_400(self, walrus):
        response = await walrus["http"].post(f"{walrus['aggregators'][0]}/_localnet/faults", content=b"{not json")
        assert response.status_code == 400
        assert walrus["apps"][0].state.faults == Faults()

    async def test_publisher_faults(self, walrus):
        await walrus["http"].post(f"{walrus['publisher']}/_localnet/faults", json={"unavailable": True})
        response = await walrus["http"].put(f"{walrus['publisher']}/v1/blobs", content=b"later")
        assert response.status_code == 503
        assert walrus["objects"].created == []
