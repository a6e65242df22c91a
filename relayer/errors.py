"""The relayer's errors. Domain code raises these; only relayer/http_errors.py turns them into HTTP answers.

    RelayerError(message)
    ├── InvalidRequest                 the request itself is wrong; resending it unchanged cannot help
    │   ├── MalformedBody              400  not JSON
    │   ├── UnsupportedContentType     415  POST without a JSON content type
    │   ├── FieldError                 422  a missing field, or a field of the wrong JSON type
    │   ├── InvalidValue               400  a value out of range, empty text, bad base64 …
    │   ├── BodyTooLarge               413  (the connection is closed)
    │   ├── BodyTimeout                408  the body arrived too slowly (the connection is closed)
    │   └── SealSessionMissing         400  a decrypting route without x-seal-session
    ├── NotFound                       404  (the caller's own) job that does not exist
    ├── NotOwner                       403  another owner's resource
    ├── ForeignCiphertext              403  a manual remember of a Seal object not encrypted for the caller
    ├── AuthRejected                   401  empty body; ``auth_error`` goes to x-auth-error when set
    ├── LegacySdk                      426  a signed request without x-nonce
    ├── RateLimited                    429  body names the layer; Retry-After
    ├── SealSessionInvalid             400  the sidecar refused the client's x-seal-session
    ├── SealAccessDenied               403  Seal key servers refused this caller
    ├── SidecarRejected                400  the sidecar refused the input (e.g. a blob the publisher calls too large)
    ├── FeatureUnavailable             501  analyze/ask on a relayer without an LLM
    ├── EgressPolicyRefusal            403  analyze/ask under EGRESS_POLICY=private with no LLM allowlisted
    ├── UpstreamFailed                 502  the embedding/LLM upstream answered with a permanent error or bad shape
    └── Outage                         503  worth retrying later; Retry-After
        ├── AuthUpstreamUnavailable          auth could not reach its nonce store, database or chain;
        │                                    x-auth-error: AUTH_UPSTREAM_UNAVAILABLE (the SDK retries on it)
        ├── NonceStoreUnavailable            Redis could not record a nonce
        ├── SidecarUnavailable               the sidecar is unreachable, timed out or answered garbage
        ├── SidecarFailed                    the sidecar reported a failure on its side (``kind``)
        └── UpstreamUnavailable              embeddings / LLM / Walrus / Sui / key servers failing transiently
The storage layer's tree (relayer/database/errors.py) and chain/errors.py are mapped by the same edge.
"""

from __future__ import annotations

from typing import Any


class RelayerError(Exception):
    """Base of every failure the relayer answers on purpose; ``message`` is safe to show the client."""

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(RelayerError):
    """The client's request is wrong."""


class MalformedBody(InvalidRequest):
    pass


class UnsupportedContentType(InvalidRequest):
    pass


class FieldError(InvalidRequest):
    """A required field is missing or has the wrong JSON type."""


class InvalidValue(InvalidRequest):
    """A field is present and typed right, but its value is not acceptable."""


class BodyTooLarge(InvalidRequest):
    pass


class BodyTimeout(InvalidRequest):
    pass


class SealSessionMissing(InvalidRequest):
    def __init__(self) -> None:
        super().__init__("This endpoint needs the x-seal-session header (sent by the official SDKs)")


class NotFound(RelayerError):
    pass


class NotOwner(RelayerError):
    pass


class ForeignCiphertext(RelayerError):
    """A manual remember whose Seal object names another identity or package (MemWal #369)."""


class AuthRejected(RelayerError):
    """Authentication failed; ``message`` is logged, never sent (auth failures have empty bodies)."""

    def __init__(self, message: str, *, auth_error: str | None = None) -> None:
        super().__init__(message)
        self.auth_error = auth_error


class LegacySdk(RelayerError):
    """A signed request without x-nonce: an SDK older than the replay protection."""


class RateLimited(RelayerError):
    def __init__(self, *, layer: str, limit: str, retry_after_seconds: int) -> None:
        super().__init__("Rate limit exceeded")
        self.layer = layer
        self.limit = limit
        self.retry_after_seconds = retry_after_seconds

    def details(self) -> dict[str, Any]:
        return {"layer": self.layer, "limit": self.limit, "retry_after_seconds": self.retry_after_seconds}


class SealSessionInvalid(RelayerError):
    pass


class SealAccessDenied(RelayerError):
    pass


class SidecarRejected(RelayerError):
    pass


class FeatureUnavailable(RelayerError):
    pass


class EgressPolicyRefusal(RelayerError):
    """The relayer's attested egress policy forbids sending memory text where this feature needs it."""


class UpstreamFailed(RelayerError):
    """An upstream answered, but with something a retry will not fix; ``message`` is logged, not sent."""


class Outage(RelayerError):
    """A dependency is down or overloaded; ``message`` is logged, the client gets a generic text."""


class AuthUpstreamUnavailable(Outage):
    pass


class NonceStoreUnavailable(Outage):
    pass


class SidecarUnavailable(Outage):
    pass


class SidecarFailed(Outage):
    def __init__(self, message: str, *, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


class UpstreamUnavailable(Outage):
    pass
