"""Errors of the sidecar; each carries the ``kind`` the relayer sees in ``{error, kind}`` bodies.

    SidecarError(status, kind)
    ├── BadInput            400  malformed request from the relayer
    ├── SessionInvalid      400  the client's x-seal-session is missing, malformed, or expired
    ├── AccessDenied        403  Seal key servers refused keys for this caller (permanent)
    ├── UpstreamFailure     503  Walrus, Sui or key servers unreachable/overloaded (transient)
    └── TransferFailed      500  the blob is stored but could not be tagged/transferred (retryable)
Decrypt failures of one object are reported per item (``DecryptFailure``), never with detail that
would help an attacker probe ciphertexts.
"""

from __future__ import annotations


class SidecarError(Exception):
    status = 500
    kind = "Internal"

    def __init__(self, message: str = "", *, kind: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if kind:
            self.kind = kind


class BadInput(SidecarError):
    status = 400
    kind = "BadInput"


class SessionInvalid(SidecarError):
    status = 400
    kind = "InvalidSession"


class AccessDenied(SidecarError):
    status = 403
    kind = "NoAccess"


class UpstreamFailure(SidecarError):
    status = 503
    kind = "UpstreamUnavailable"


class TransferFailed(SidecarError):
    status = 500
    kind = "TransferFailed"
