"""What can be wrong with a session chain, as typed errors (relayer/http_errors.py maps them).

    SessionChainError(RelayerError)
    ├── SessionConflict                409  the chain is fine, but this request conflicts with it
    │   ├── HeadMoved                       ``expected_head`` is stale; carries the current head
    │   ├── SessionClosed                   the session has a closing frame: nothing may follow it
    │   ├── SessionBusy                     another append to this session holds its lock past the wait
    │   └── ForkDetected                    two valid frames of one sequence with different histories
    └── ChainTampered                  422  the stored chain does not verify; never served as history
        ├── GapDetected                     a sequence has no blob (on chain or on Walrus)
        ├── ReorderDetected                 a frame's sequence is not where its link or its chain tag puts it
        ├── SubstitutionDetected            a link (blob id, frame hash, skip list) names something else
        ├── WrongSession                    a frame of another session inside this one
        ├── WrongOwner                      a frame written for another owner
        └── MalformedFrame                  not a frame this relayer can read (bytes, version, caps)
"""

from __future__ import annotations

from dataclasses import dataclass

from relayer.errors import RelayerError


@dataclass(frozen=True)
class Head:
    sequence: int
    blob_id: str


class SessionChainError(RelayerError):
    kind = "session_chain"

    def details(self) -> dict[str, object]:
        return {"kind": self.kind}


class SessionConflict(SessionChainError):
    pass


class HeadMoved(SessionConflict):
    kind = "head_moved"

    def __init__(self, message: str, head: Head | None) -> None:
        super().__init__(message)
        self.head = head

    def details(self) -> dict[str, object]:
        if self.head is None:
            return {"kind": self.kind, "head_sequence": -1}
        return {"kind": self.kind, "head_sequence": self.head.sequence, "head_blob_id": self.head.blob_id}


class SessionClosed(SessionConflict):
    kind = "closed"


class SessionBusy(SessionConflict):
    kind = "busy"


class ForkDetected(SessionConflict):
    kind = "fork"

    def __init__(self, message: str, *, sequence: int, blob_ids: tuple[str, ...]) -> None:
        super().__init__(message)
        self.sequence = sequence
        self.blob_ids = blob_ids

    def details(self) -> dict[str, object]:
        return {"kind": self.kind, "sequence": self.sequence, "blob_ids": list(self.blob_ids)}


class ChainTampered(SessionChainError):
    kind = "tampered"


class GapDetected(ChainTampered):
    kind = "gap"


class ReorderDetected(ChainTampered):
    kind = "reorder"


class SubstitutionDetected(ChainTampered):
    kind = "substitution"


class WrongSession(ChainTampered):
    kind = "wrong_session"


class WrongOwner(ChainTampered):
    kind = "wrong_owner"


class MalformedFrame(ChainTampered):
    kind = "malformed_frame"
