"""The session frame, version 1: one turn of a session, as the canonical bytes that are Seal-encrypted.

A frame is a JSON object encoded canonically (keys sorted, no spaces, UTF-8, no escapes beyond JSON's own),
so its SHA-256 is well defined; a frame whose bytes are not the canonical encoding of what they parse to is
refused. Fields:

    v                 1
    session_id        the client's id for the conversation (SESSION_ID_PATTERN; also a chain tag, so public)
    owner             the MemWal owner address (0x + 64 hex)
    sequence          0, 1, 2 … with no gaps
    role              user | assistant | system | tool
    text              the turn, verbatim
    metadata          string → string, bounded
    closed            true only on the closing frame, after which nothing may be appended
    prev_blob_id      the blob of sequence − 1 (null at sequence 0)
    prev_frame_hash   hex SHA-256 of the previous frame's plaintext bytes (null at sequence 0)
    earlier_blob_ids  the blobs of sequence − 1, − 2, … − SKIP_LENGTH (as many as exist), newest first

The format's caps are constants, not settings: every relayer reading a chain must accept what any other
relayer wrote, so the caps belong to the format version.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from relayer.sessions.errors import MalformedFrame

FRAME_VERSION = 1
SKIP_LENGTH = 8  # earlier blob ids each frame carries
MAX_TEXT_BYTES = 256 * 1024
MAX_METADATA_ENTRIES = 16
MAX_METADATA_KEY_LENGTH = 64
MAX_METADATA_VALUE_LENGTH = 1024
MAX_SEQUENCE = 2**53 - 1  # an integer every JSON reader keeps exact
MAX_FRAME_BYTES = MAX_TEXT_BYTES * 6 + 64 * 1024  # text escaped at worst ×6, plus everything else
SESSION_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
ROLES = ("user", "assistant", "system", "tool")
Role = Literal["user", "assistant", "system", "tool"]

_SESSION_ID = re.compile(SESSION_ID_PATTERN)
_OWNER = re.compile(r"^0x[0-9a-f]{64}$")
_BLOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_HASH = re.compile(r"^[0-9a-f]{64}$")
_FIELDS = {"v", "session_id", "owner", "sequence", "role", "text", "metadata", "closed", "prev_blob_id",
           "prev_frame_hash", "earlier_blob_ids"}


def frame_hash(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def is_session_id(value: str) -> bool:
    return _SESSION_ID.match(value) is not None


@dataclass(frozen=True)
class Frame:
    session_id: str
    owner: str
    sequence: int
    role: Role
    text: str
    prev_blob_id: str | None
    prev_frame_hash: str | None
    earlier_blob_ids: tuple[str, ...]
    metadata: Mapping[str, str] = field(default_factory=dict)
    closed: bool = False
    version: int = FRAME_VERSION

    def __post_init__(self) -> None:
        _check(self)

    def encode(self) -> bytes:
        """The canonical bytes (what is encrypted, and what the next frame's ``prev_frame_hash`` hashes)."""
        value = {
            "v": self.version, "session_id": self.session_id, "owner": self.owner, "sequence": self.sequence,
            "role": self.role, "text": self.text, "metadata": dict(self.metadata), "closed": self.closed,
            "prev_blob_id": self.prev_blob_id, "prev_frame_hash": self.prev_frame_hash,
            "earlier_blob_ids": list(self.earlier_blob_ids),
        }
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def first_frame(*, session_id: str, owner: str, role: Role, text: str, metadata: Mapping[str, str], closed: bool = False) -> Frame:
    return Frame(session_id, owner, 0, role, text, None, None, (), dict(metadata), closed)


def next_frame(previous: Frame, previous_raw: bytes, previous_blob_id: str, *, role: Role, text: str,
               metadata: Mapping[str, str], closed: bool = False) -> Frame:
    """The frame that follows ``previous`` (stored as ``previous_raw`` in blob ``previous_blob_id``)."""
    earlier = (previous_blob_id, *previous.earlier_blob_ids)[:SKIP_LENGTH]
    return Frame(previous.session_id, previous.owner, previous.sequence + 1, role, text, previous_blob_id,
                 frame_hash(previous_raw), earlier, dict(metadata), closed)


def parse_frame(raw: bytes) -> Frame:
    """Parse and check one frame; anything but the canonical encoding of a valid frame is MalformedFrame."""
    if len(raw) > MAX_FRAME_BYTES:
        raise MalformedFrame(f"frame larger than {MAX_FRAME_BYTES} bytes")
    try:
        value = json.loads(raw)  # a frame's deepest value is 2 levels: no depth attack fits the size cap
    except (ValueError, RecursionError):
        raise MalformedFrame("frame is not JSON") from None
    if not isinstance(value, dict):
        raise MalformedFrame("frame is not a JSON object")
    if value.get("v") != FRAME_VERSION or isinstance(value.get("v"), bool):
        raise MalformedFrame(f"unsupported frame version {value.get('v')!r}")
    if set(value) != _FIELDS:
        raise MalformedFrame("frame fields are not those of version 1")
    metadata = value["metadata"]
    earlier = value["earlier_blob_ids"]
    if not isinstance(metadata, dict) or not isinstance(earlier, list):
        raise MalformedFrame("frame metadata or earlier_blob_ids has the wrong type")
    try:
        frame = Frame(
            session_id=value["session_id"], owner=value["owner"], sequence=value["sequence"], role=value["role"],
            text=value["text"], prev_blob_id=value["prev_blob_id"], prev_frame_hash=value["prev_frame_hash"],
            earlier_blob_ids=tuple(earlier), metadata=metadata, closed=value["closed"],
        )
    except (TypeError, ValueError) as exc:
        raise MalformedFrame(f"invalid frame: {exc}") from None
    if frame.encode() != raw:
        raise MalformedFrame("frame bytes are not canonical")
    return frame


def _check(frame: Frame) -> None:
    """Raise ValueError (TypeError for wrong types) unless ``frame`` is a valid version-1 frame."""
    if frame.version != FRAME_VERSION:
        raise ValueError(f"unsupported frame version {frame.version}")
    if not isinstance(frame.session_id, str) or not is_session_id(frame.session_id):
        raise ValueError("session_id does not match the session id pattern")
    if not isinstance(frame.owner, str) or not _OWNER.match(frame.owner):
        raise ValueError("owner must be a normalized 0x + 64 hex address")
    if not isinstance(frame.sequence, int) or isinstance(frame.sequence, bool) or not 0 <= frame.sequence <= MAX_SEQUENCE:
        raise ValueError("sequence must be an integer in 0..2^53-1")
    if frame.role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if not isinstance(frame.text, str) or len(frame.text.encode("utf-8", "surrogatepass")) > MAX_TEXT_BYTES:
        raise ValueError(f"text must be a string of at most {MAX_TEXT_BYTES} UTF-8 bytes")
    if not isinstance(frame.closed, bool):
        raise ValueError("closed must be true or false")
    if len(frame.metadata) > MAX_METADATA_ENTRIES or not all(
        isinstance(key, str) and isinstance(item, str) and 0 < len(key) <= MAX_METADATA_KEY_LENGTH
        and len(item) <= MAX_METADATA_VALUE_LENGTH for key, item in frame.metadata.items()
    ):
        raise ValueError(f"metadata must map at most {MAX_METADATA_ENTRIES} keys of 1..{MAX_METADATA_KEY_LENGTH} "
                         f"characters to strings of at most {MAX_METADATA_VALUE_LENGTH}")
    if not all(isinstance(blob_id, str) and _BLOB_ID.match(blob_id) for blob_id in frame.earlier_blob_ids):
        raise ValueError("earlier_blob_ids must be Walrus blob ids")
    if frame.sequence == 0:
        if frame.prev_blob_id is not None or frame.prev_frame_hash is not None or frame.earlier_blob_ids:
            raise ValueError("the first frame has no predecessor")
        return
    if not isinstance(frame.prev_blob_id, str) or not _BLOB_ID.match(frame.prev_blob_id):
        raise ValueError("prev_blob_id must be a Walrus blob id")
    if not isinstance(frame.prev_frame_hash, str) or not _HASH.match(frame.prev_frame_hash):
        raise ValueError("prev_frame_hash must be 64 lowercase hex digits")
    if len(frame.earlier_blob_ids) != min(frame.sequence, SKIP_LENGTH) or frame.earlier_blob_ids[0] != frame.prev_blob_id:
        raise ValueError("earlier_blob_ids must list the previous blobs, newest (prev_blob_id) first")
