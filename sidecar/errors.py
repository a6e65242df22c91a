"""Errors of the sidecar. Each class is named after the ``protocol.ErrorKind`` the relayer receives.

    SidecarError(kind)        status from protocol.status_of(kind)
    ├── BadInput              400  the request breaks the protocol or names another package
    ├── InvalidSession        400  the client's x-seal-session is missing, malformed, expired or foreign
    ├── AccessDenied          403  Seal key servers (or the account lookup) refused this caller
    ├── UpstreamUnavailable   503  Walrus, Sui or key servers unreachable/overloaded (transient)
    └── TransferFailed        500  the blob is stored but could not be tagged/transferred (a retry resumes)
Decryption failures of single blobs are per-blob statuses in /blobs/open, never exceptions, and carry no
detail that would help an attacker probe ciphertexts.
"""

from __future__ import annotations

from sidecar.protocol import ErrorKind, ErrorReply, status_of


class SidecarError(Exception):
    kind = ErrorKind.INTERNAL

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message

    @property
    def status(self) -> int:
        return status_of(self.kind)

    def reply(self) -> ErrorReply:
        return ErrorReply(self.kind, self.message)


class BadInput(SidecarError):
    kind = ErrorKind.BAD_INPUT


class InvalidSession(SidecarError):
    kind = ErrorKind.INVALID_SESSION


class AccessDenied(SidecarError):
    kind = ErrorKind.ACCESS_DENIED


class UpstreamUnavailable(SidecarError):
    kind = ErrorKind.UPSTREAM_UNAVAILABLE


class TransferFailed(SidecarError):
    kind = ErrorKind.TRANSFER_FAILED
