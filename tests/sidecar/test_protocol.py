"""sidecar.protocol: every message round-trips through JSON, and from_json refuses what breaks the contract."""

from __future__ import annotations

import base64
import json

import pytest

from sidecar.protocol import (
    MAX_DATA_BYTES,
    MAX_OPEN_BATCH,
    MAX_QUERY_BLOBS,
    BlobStatus,
    EncryptReply,
    EncryptRequest,
    ErrorKind,
    ErrorReply,
    HealthReply,
    OpenBlobsReply,
    OpenBlobsRequest,
    OpenedBlob,
    ProtocolError,
    QueryBlobsReply,
    QueryBlobsRequest,
    TaggedBlob,
    UploadReply,
    UploadRequest,
    parse_json_object,
    status_of,
)

PACKAGE = "0x" + "ab" * 32
OWNER = "0x" + "cd" * 32
BLOB = "A" * 43

MESSAGES = [
    HealthReply(12, 3),
    EncryptRequest(b"\x00secret", OWNER, PACKAGE),
    EncryptReply(b"ciphertext"),
    UploadRequest(b"ct", OWNER, "ns", PACKAGE, 5, job_id="job-1", agent_id="ab" * 32),
    UploadRequest(b"ct", OWNER, "ns", PACKAGE, 1),
    UploadReply(BLOB, "0x" + "01" * 32, "ok"),
    OpenBlobsRequest((BLOB, "B" * 43), PACKAGE, "0x" + "02" * 32, "c2Vzc2lvbg=="),
    OpenBlobsReply((
        OpenedBlob(BLOB, BlobStatus.OPENED, b"hello", 300),
        OpenedBlob("B" * 43, BlobStatus.NOT_FOUND),
        OpenedBlob("C" * 43, BlobStatus.CORRUPT),
        OpenedBlob("D" * 43, BlobStatus.UNAVAILABLE),
    )),
    QueryBlobsRequest(OWNER, "default", PACKAGE),
    QueryBlobsReply((TaggedBlob(BLOB, "0x" + "03" * 32, "default", PACKAGE),), capped=True),
    ErrorReply(ErrorKind.INVALID_SESSION, "expired"),
]


class TestRoundTrip:
    @pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
    def test_json_round_trip(self, message):
        wire = json.dumps(message.to_json()).encode()
        assert type(message).from_json(parse_json_object(wire)) == message

    def test_requests_name_their_path_and_reply(self):
        assert (EncryptRequest.PATH, EncryptRequest.Reply) == ("/seal/encrypt", EncryptReply)
        assert (UploadRequest.PATH, UploadRequest.Reply) == ("/walrus/upload", UploadReply)
        assert (OpenBlobsRequest.PATH, OpenBlobsRequest.Reply) == ("/blobs/open", OpenBlobsReply)
        assert (QueryBlobsRequest.PATH, QueryBlobsRequest.Reply) == ("/walrus/query-blobs", QueryBlobsReply)

    def test_one_status_per_kind(self):
        assert {kind.value: status_of(kind) for kind in ErrorKind} == {
            "Unauthorized": 401, "BadInput": 400, "InvalidSession": 400, "AccessDenied": 403,
            "UpstreamUnavailable": 503, "TransferFailed": 500, "Internal": 500,
        }


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class TestRefusals:
    @pytest.mark.parametrize("raw,match", [
        (b"{", "must be JSON"), (b"\xff", "must be JSON"), (b"[1]", "JSON object"), (b"[" * 5000 + b"]" * 5000, "must be JSON"),
    ])
    def test_parse_json_object(self, raw, match):
        with pytest.raises(ProtocolError, match=match):
            parse_json_object(raw)

    def test_parse_json_object_size_cap(self):
        with pytest.raises(ProtocolError, match="larger than 10 bytes"):
            parse_json_object(b'{"a": "0123456789"}', max_bytes=10)

    @pytest.mark.parametrize("body,match", [
        ({"data": "%%", "owner": OWNER, "packageId": PACKAGE}, "data must be base64"),
        ({"data": b64(b"x" * (MAX_DATA_BYTES + 3)), "owner": OWNER, "packageId": PACKAGE}, "at most"),
        ({"data": 5, "owner": OWNER, "packageId": PACKAGE}, "data must be base64"),
        ({"data": "", "owner": "nonsense", "packageId": PACKAGE}, "owner must be a Sui address"),
        ({"data": "", "owner": OWNER, "packageId": "0x" + "a" * 65}, "packageId must be a Sui address"),
    ])
    def test_encrypt_request(self, body, match):
        with pytest.raises(ProtocolError, match=match):
            EncryptRequest.from_json(body)

    @pytest.mark.parametrize("change,match", [
        ({"epochs": 0}, "epochs"), ({"epochs": 6}, "epochs"), ({"epochs": True}, "epochs"), ({"epochs": "1"}, "epochs"),
        ({"namespace": ""}, "namespace"), ({"namespace": "x" * 1025}, "namespace"), ({"jobId": 7}, "jobId"),
    ])
    def test_upload_request(self, change, match):
        body = {**UploadRequest(b"ct", OWNER, "ns", PACKAGE, 1).to_json(), **change}
        with pytest.raises(ProtocolError, match=match):
            UploadRequest.from_json(body)

    @pytest.mark.parametrize("blob_ids,match", [
        ([], "1..100"), ([BLOB, BLOB], "distinct"), ([f"A{i:042d}" for i in range(MAX_OPEN_BATCH + 1)], "1..100"),
        (["../x"], "blob id"), (["A" * 129], "blob id"), ([None], "blob id"), (BLOB, "1..100"),
    ])
    def test_open_request_ids(self, blob_ids, match):
        body = {"blobIds": blob_ids, "packageId": PACKAGE, "accountId": OWNER, "session": ""}
        with pytest.raises(ProtocolError, match=match):
            OpenBlobsRequest.from_json(body)

    def test_open_request_session_cap(self):
        body = {"blobIds": [BLOB], "packageId": PACKAGE, "accountId": OWNER, "session": "s" * (16 * 1024 + 1)}
        with pytest.raises(ProtocolError, match="session"):
            OpenBlobsRequest.from_json(body)

    @pytest.mark.parametrize("entry,match", [
        ({"blobId": BLOB, "status": "opened"}, "plaintext must be base64"),
        ({"blobId": BLOB, "status": "opened", "plaintext": "aGk=", "ciphertextBytes": 0}, "ciphertextBytes"),
        ({"blobId": BLOB, "status": "decrypted"}, "blob status"),
        ({"blobId": BLOB, "status": "not_found", "plaintext": "aGk="}, None),  # extra fields of other statuses are ignored
    ])
    def test_opened_blob(self, entry, match):
        if match is None:
            assert OpenedBlob.from_json(entry) == OpenedBlob(BLOB, BlobStatus.NOT_FOUND)
            return
        with pytest.raises(ProtocolError, match=match):
            OpenedBlob.from_json(entry)

    def test_opened_blob_invariant_on_construction(self):
        with pytest.raises(ProtocolError, match="exactly with status opened"):
            OpenedBlob(BLOB, BlobStatus.CORRUPT, b"leak", 3)
        with pytest.raises(ProtocolError, match="exactly with status opened"):
            OpenedBlob(BLOB, BlobStatus.OPENED)

    def test_reply_caps(self):
        with pytest.raises(ProtocolError, match="blobs must be a list"):
            OpenBlobsReply.from_json({"blobs": [{"blobId": BLOB, "status": "not_found"}] * (MAX_OPEN_BATCH + 1)})
        with pytest.raises(ProtocolError, match="blobs must be a list"):
            QueryBlobsReply.from_json({"blobs": [{}] * (MAX_QUERY_BLOBS + 1), "capped": False})
        with pytest.raises(ProtocolError, match="capped"):
            QueryBlobsReply.from_json({"blobs": [], "capped": "no"})

    @pytest.mark.parametrize("body", [{"kind": "NoAccess", "error": "old name"}, {"kind": 3}, {"error": "no kind"}])
    def test_error_reply_kinds(self, body):
        with pytest.raises(ProtocolError, match="kind"):
            ErrorReply.from_json(body)

    def test_health_needs_ok(self):
        with pytest.raises(ProtocolError, match="status must be ok"):
            HealthReply.from_json({"status": "degraded", "uptimeMs": 1, "activeWalrusUploads": 0})
