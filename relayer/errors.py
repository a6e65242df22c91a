"""Errors the relayer turns into HTTP responses, in one place.

    ApiError(status, message)            → {"error": message}
    ├── BadRequest            400         malformed JSON, invalid field values, empty text
    ├── Unauthorized          401         empty body (auth failures never explain themselves)
    ├── PaymentRequired       402         storage quota exceeded
    ├── Forbidden             403         another owner's resource
    ├── NotFound              404
    ├── PayloadTooLarge       413
    ├── UnsupportedMediaType  415         POST without a JSON content type
    ├── UnprocessableEntity   422         missing field or wrong type
    ├── UpgradeRequired       426         request without x-nonce (legacy SDK)
    ├── RateLimited           429         body carries the layer, limit and Retry-After
    ├── InternalError         500         detail logged with the trace id, never sent
    └── UpstreamUnavailable   503         embeddings / LLM / sidecar / chain temporarily failing
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    status: int = 500

    def __init__(self, message: str = "", *, headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.headers = headers or {}
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        return {"error": self.message, **self.extra}


class BadRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401


class PaymentRequired(ApiError):
    status = 402


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class PayloadTooLarge(ApiError):
    status = 413


class UnsupportedMediaType(ApiError):
    status = 415


class UnprocessableEntity(ApiError):
    status = 422


class UpgradeRequired(ApiError):
    status = 426


class RateLimited(ApiError):
    status = 429


class InternalError(ApiError):
    status = 500


class UpstreamUnavailable(ApiError):
    status = 503
