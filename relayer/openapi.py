"""/openapi.json: an OpenAPI 3.1 document generated from the routes' own models (relayer/api_models.py).

Every route is a ``DocumentedRoute``: a Starlette route that also carries its ``Operation`` (method, path,
request model, success model, query parameters, the error statuses it can answer). ``openapi_document`` turns
those into the document, with pydantic's JSON Schemas (2020-12, what OpenAPI 3.1 uses) under
``components/schemas``. Signed routes require the delegate-key headers (memwal.md §2), declared as API-key
security schemes that must all be present; errors are ``{"error": message}`` except the empty-bodied 401/426.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from relayer.api_models import ErrorBody, RateLimitBody, ResponseModel

OPENAPI_VERSION = "3.1.0"
SIGNED_HEADERS = ("x-public-key", "x-signature", "x-timestamp", "x-nonce")
# Other ways a route may accept a caller (Operation.alternatives), as OpenAPI security schemes.
SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    "owner-token": {"type": "http", "scheme": "bearer", "description": "An owner token from POST /v1/owner-tokens"},
    "mcp-bearer": {"type": "http", "scheme": "bearer",
                   "description": "An owner token, or an OAuth access token from /token (when OAUTH_ISSUER_URL is set)"},
    "x-service-credential": {"type": "apiKey", "in": "header", "name": "x-service-credential",
                             "description": "The operator's service credential (OWNER_TOKEN_SERVICE_CREDENTIAL)"},
}
# Statuses every signed route may answer before its handler runs (body, auth, rate limit, outages).
SIGNED_GET_ERRORS = (400, 401, 426, 429, 503)
SIGNED_POST_ERRORS = (*SIGNED_GET_ERRORS, 408, 413, 415, 422)

_ERROR_DESCRIPTIONS = {
    202: "Accepted (empty body): a JSON-RPC notification or response sent to /api/mcp",
    400: "Malformed JSON, a value out of range, or a string that is not valid Unicode",
    401: "Authentication failed (empty body); `x-auth-error` names some causes",
    402: "Storage quota exceeded",
    403: "Not the caller's resource, or Seal key servers refused the caller",
    404: "Not found (or another owner's)",
    408: "The request body did not arrive in time (the connection is closed)",
    413: "Request body too large (the connection is closed)",
    415: "The body is not `application/json`",
    422: "A required field is missing or has the wrong JSON type",
    426: "Signed request without `x-nonce`: an SDK older than the replay protection (empty body)",
    429: "Rate limited; `Retry-After` says when to retry",
    501: "The feature needs an LLM this relayer does not have",
    502: "An upstream answered with a permanent error",
    503: "A dependency is unavailable; retry after `Retry-After` seconds",
}
_EMPTY_BODY = {202, 401, 426}  # 202 here: an MCP notification, accepted with no answer


@dataclass(frozen=True)
class QueryParameter:
    name: str
    schema: dict[str, Any]
    description: str = ""


@dataclass(frozen=True)
class Operation:
    method: str  # upper case
    path: str  # Starlette template, e.g. /api/remember/{job_id}
    summary: str
    response: type[ResponseModel] | None  # None: not JSON (e.g. Prometheus text)
    status: int = 200
    request: type[BaseModel] | None = None
    signed: bool = False
    errors: tuple[int, ...] = ()
    query: tuple[QueryParameter, ...] = ()
    media_type: str = "application/json"
    links: dict[str, dict[str, Any]] = field(default_factory=dict)  # OpenAPI links from the success response
    alternatives: tuple[str, ...] = ()  # SECURITY_SCHEMES accepted instead of (or, unsigned, as) the signature
    rate_limit: str = ""  # which budget the route spends and how much, as `x-rate-limit` (README's API table)
    # Statuses whose body may also be another shape than ErrorBody (MCP's JSON-RPC errors on /api/mcp).
    error_models: dict[int, type[ResponseModel]] = field(default_factory=dict)

    @property
    def operation_id(self) -> str:
        words = [part for part in self.path.replace("{", "").replace("}", "").split("/") if part]
        return self.method.lower() + "".join(word.replace("-", "_").title().replace("_", "") for word in words)

    @property
    def error_statuses(self) -> tuple[int, ...]:
        base: tuple[int, ...] = ()
        if self.signed:
            base = SIGNED_POST_ERRORS if self.request is not None else SIGNED_GET_ERRORS
        return tuple(sorted({*base, *self.errors}))


class DocumentedRoute(Route):
    """A Starlette route that knows its OpenAPI operation."""

    def __init__(self, operation: Operation, endpoint: Callable[[Request], Awaitable[Response]]) -> None:
        super().__init__(operation.path, endpoint, methods=[operation.method])
        self.operation = operation


def operations_of(routes: Iterable[BaseRoute]) -> list[Operation]:
    return [route.operation for route in routes if isinstance(route, DocumentedRoute)]


def _path_parameters(path: str) -> list[dict[str, Any]]:
    names = [segment[1:-1] for segment in path.split("/") if segment.startswith("{") and segment.endswith("}")]
    return [{"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}} for name in names]


def _error_response(status: int, alternative: type[ResponseModel] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": _ERROR_DESCRIPTIONS.get(status, "Error")}
    headers: dict[str, Any] = {}
    if status in (429, 503):
        headers["Retry-After"] = {"schema": {"type": "string", "pattern": "^[0-9]+$"}, "description": "seconds"}
    if status in (401, 503):
        headers["x-auth-error"] = {
            "schema": {"type": "string"},
            "description": "ERR_TIMESTAMP_OUT_OF_BOUNDS, ERR_ACCOUNT_MISMATCH, ERR_SIGNATURE_TOO_OLD (401) or "
            "AUTH_UPSTREAM_UNAVAILABLE (503)",
        }
    if status in (408, 413):
        headers["Connection"] = {"schema": {"type": "string", "const": "close"}}
    if headers:
        response["headers"] = headers
    if status not in _EMPTY_BODY:
        body = RateLimitBody if status == 429 else ErrorBody
        schema: dict[str, Any] = {"$ref": f"#/components/schemas/{body.__name__}"}
        if alternative is not None:
            schema = {"anyOf": [schema, {"$ref": f"#/components/schemas/{alternative.__name__}"}]}
        response["content"] = {"application/json": {"schema": schema}}
    return response


def openapi_document(operations: Sequence[Operation], *, title: str, version: str) -> dict[str, Any]:
    models: set[type[BaseModel]] = {ErrorBody, RateLimitBody}
    for operation in operations:
        models.update(model for model in (operation.request, operation.response) if model is not None)
        models.update(operation.error_models.values())
    ordered = sorted(models, key=lambda model: model.__name__)
    keyed: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        (model, "validation" if _is_request(model, operations) else "serialization") for model in ordered
    ]
    _, schemas = models_json_schema(keyed, ref_template="#/components/schemas/{model}")
    paths: dict[str, dict[str, Any]] = {}
    for operation in operations:
        paths.setdefault(operation.path, {})[operation.method.lower()] = _operation_object(operation)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": title,
            "version": version,
            "description": "MemWal-compatible relayer. Signed routes need the delegate-key headers: an Ed25519 "
            "signature over `{timestamp}.{METHOD}.{path_and_query}.{sha256hex(body)}.{nonce}.{account_id}`.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas.get("$defs", {}),
            "securitySchemes": {
                **{header: {"type": "apiKey", "in": "header", "name": header} for header in SIGNED_HEADERS},
                **SECURITY_SCHEMES,
            },
        },
    }


def _is_request(model: type[BaseModel], operations: Sequence[Operation]) -> bool:
    return any(operation.request is model for operation in operations)


def _operation_object(operation: Operation) -> dict[str, Any]:
    parameters = _path_parameters(operation.path)
    parameters += [
        {"name": p.name, "in": "query", "required": False, "schema": p.schema, "description": p.description}
        for p in operation.query
    ]
    if operation.signed:
        parameters += [
            {"name": "x-account-id", "in": "header", "required": False, "schema": {"type": "string"},
             "description": "The caller's MemWal account id (signed); it must be the account the key belongs to"},
            {"name": "x-seal-session", "in": "header", "required": False, "schema": {"type": "string"},
             "description": "Seal session (base64 JSON) for routes that decrypt"},
        ]
    success: dict[str, Any] = {"description": "OK" if operation.status == 200 else "Accepted"}
    if operation.response is not None:
        success["content"] = {operation.media_type: {"schema": {"$ref": f"#/components/schemas/{operation.response.__name__}"}}}
    else:
        any_json = {"type": "object"} if operation.media_type.endswith("json") else {"type": "string"}
        success["content"] = {operation.media_type: {"schema": any_json}}
    if operation.links:
        success["links"] = operation.links
    responses: dict[str, Any] = {str(operation.status): success}
    for status in operation.error_statuses:
        responses[str(status)] = _error_response(status, operation.error_models.get(status))
    document: dict[str, Any] = {
        "operationId": operation.operation_id,
        "summary": operation.summary,
        "parameters": parameters,
        "responses": responses,
    }
    if operation.rate_limit:
        document["x-rate-limit"] = operation.rate_limit
    if operation.request is not None:
        document["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{operation.request.__name__}"}}},
        }
    security: list[dict[str, list[str]]] = [{header: [] for header in SIGNED_HEADERS}] if operation.signed else []
    security += [{scheme: []} for scheme in operation.alternatives]
    if security:
        document["security"] = security
    return document
