from __future__ import annotations

import json

import pytest

from relayer.sessions.errors import MalformedFrame
from relayer.sessions.frames import SKIP_LENGTH, Frame, first_frame, frame_hash, next_frame, parse_frame

OWNER = "0x" + "ab" * 32


def chain(length: int) -> list[tuple[str, Frame, bytes]]:
    frame = first_frame(session_id="chat-1", owner=OWNER, role="user", text="turn 0", metadata={})
    frames = [(f"blob{0:03d}", frame, frame.encode())]
    for sequence in range(1, length):
        blob_id, previous, raw = frames[-1]
        frame = next_frame(previous, raw, blob_id, role="assistant", text=f"turn {sequence}", metadata={"k": "v"})
        frames.append((f"blob{sequence:03d}", frame, frame.encode()))
    return frames


class TestFrame:
    def test_round_trip_is_canonical(self):
        for _, frame, raw in chain(12):
            assert parse_frame(raw) == frame
            assert json.loads(raw) == json.loads(json.dumps(json.loads(raw), sort_keys=True))

    def test_links_and_skip_list(self):
        frames = chain(12)
        for index in range(1, 12):
            _, frame, _ = frames[index]
            assert frame.prev_blob_id == frames[index - 1][0]
            assert frame.prev_frame_hash == frame_hash(frames[index - 1][2])
            assert frame.earlier_blob_ids == tuple(frames[j][0] for j in range(index - 1, max(index - 1 - SKIP_LENGTH, -1), -1))
        assert len(frames[11][1].earlier_blob_ids) == SKIP_LENGTH

    def test_non_canonical_bytes_are_refused(self):
        _, _, raw = chain(2)[1]
        spaced = json.dumps(json.loads(raw), sort_keys=True).encode()
        with pytest.raises(MalformedFrame, match="canonical"):
            parse_frame(spaced)

    @pytest.mark.parametrize("change, message", [
        ({"v": 2}, "version"), ({"extra": 1}, "fields"), ({"sequence": -1}, "sequence"), ({"role": "root"}, "role"),
        ({"owner": "0xAB"}, "owner"), ({"session_id": "bad id"}, "session_id"), ({"prev_frame_hash": "00"}, "prev_frame_hash"),
        ({"earlier_blob_ids": []}, "earlier_blob_ids"), ({"metadata": {"k": 1}}, "metadata"), ({"closed": "yes"}, "closed"),
    ])
    def test_invalid_frames_are_refused(self, change, message):
        _, _, raw = chain(2)[1]
        value = {**json.loads(raw), **change}
        with pytest.raises(MalformedFrame, match=message):
            parse_frame(json.dumps(value, sort_keys=True, separators=(",", ":")).encode())

    def test_garbage_and_oversized(self):
        with pytest.raises(MalformedFrame, match="JSON"):
            parse_frame(b"\xff\x00")
        with pytest.raises(MalformedFrame, match="larger"):
            parse_frame(b"{" * (2 * 1024 * 1024))

    def test_first_frame_has_no_predecessor(self):
        with pytest.raises(ValueError, match="predecessor"):
            Frame("chat-1", OWNER, 0, "user", "x", "blob", "0" * 64, ("blob",))
