"""The relayer's HTTP contract as pydantic models: what every route accepts and answers.

Routes validate their bodies with the request models (relayer/validation.py turns the first problem into a 422
or a 400) and build their answers from the response models; /openapi.json is generated from the same classes
(relayer/openapi.py), so the published description is the enforced one.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from relayer.ranking import MAX_WEIGHT, MIN_HALF_LIFE_DAYS, ScoringWeights
from relayer.sessions.frames import (
    MAX_METADATA_ENTRIES,
    MAX_METADATA_KEY_LENGTH,
    MAX_METADATA_VALUE_LENGTH,
    MAX_SEQUENCE,
    SESSION_ID_PATTERN,
    Role,
)
from relayer.sessions.frames import MAX_TEXT_BYTES as MAX_FRAME_TEXT_BYTES
from relayer.sessions.limits import MAX_WINDOW_TURNS
from relayer.validation import (
    MAX_ANALYZE_TEXT_BYTES,
    MAX_BULK_ITEMS,
    MAX_BULK_TEXT_BYTES,
    MAX_EMBED_TEXT_BYTES,
    MAX_QUERY_BYTES,
    MAX_REMEMBER_TEXT_BYTES,
    EncryptedData,
    IdempotencyKey,
    JobIds,
    Limit,
    MemoryId,
    Namespace,
    NamespaceName,
    OccurredAt,
    RequestModel,
    Tags,
    TtlSeconds,
    Vector,
    invalid_value,
    text_rules,
)

RememberText = Annotated[str, *text_rules("text", MAX_REMEMBER_TEXT_BYTES)]
BulkText = Annotated[str, *text_rules("text", MAX_BULK_TEXT_BYTES)]
AnalyzeText = Annotated[str, *text_rules("text", MAX_ANALYZE_TEXT_BYTES)]
QueryText = Annotated[str, *text_rules("query", MAX_QUERY_BYTES, "Query cannot be empty")]
QuestionText = Annotated[str, *text_rules("question", MAX_QUERY_BYTES, "Question cannot be empty")]
EmbedText = Annotated[str, *text_rules("text", MAX_EMBED_TEXT_BYTES, "text cannot be empty")]
Weight = float | None
_SURROGATES = re.compile(r"[\ud800-\udfff]")


# --- requests -------------------------------------------------------------------------------------------


class ScoringWeightsBody(RequestModel):
    """Recall ranking: score = semantic·(1−distance) + recency·2^(−age/half-life) + importance·importance."""

    semantic: Weight = Field(default=None, json_schema_extra={"minimum": 0, "maximum": MAX_WEIGHT})
    recency: Weight = Field(default=None, json_schema_extra={"minimum": 0, "maximum": MAX_WEIGHT})
    recency_half_life_days: Weight = Field(default=None, json_schema_extra={"minimum": MIN_HALF_LIFE_DAYS})
    importance: Weight = Field(default=None, json_schema_extra={"minimum": 0, "maximum": MAX_WEIGHT})

    @model_validator(mode="after")
    def _check(self) -> ScoringWeightsBody:
        self.weights()
        return self

    def weights(self) -> ScoringWeights:
        """The weights with defaults filled in; out-of-range values are refused (400) naming the field."""
        values: dict[str, float] = {}
        for name in ("semantic", "recency", "recency_half_life_days", "importance"):
            value = getattr(self, name)
            if value is None:
                continue
            if not math.isfinite(value):
                raise invalid_value(f"`scoring_weights.{name}` must be finite")
            if name != "recency_half_life_days" and not 0 <= value <= MAX_WEIGHT:
                raise invalid_value(f"`scoring_weights.{name}` must be within [0, {MAX_WEIGHT:g}]")
            values[name] = float(value)
        weights = ScoringWeights(**values)
        if weights.recency > 0 and weights.recency_half_life_days < MIN_HALF_LIFE_DAYS:
            raise invalid_value("`scoring_weights.recency_half_life_days` must be positive when recency is used")
        return weights


def scoring_weights(body: ScoringWeightsBody | None) -> ScoringWeights:
    return ScoringWeights() if body is None else body.weights()


class RememberRequest(RequestModel):
    text: RememberText
    namespace: Namespace = "default"
    idempotency_key: IdempotencyKey | None = None
    # Beyond upstream: plaintext labels for tag-filtered recall, and a time to live (relayer/memory_metadata.py).
    tags: Tags | None = None
    ttl_seconds: TtlSeconds | None = None


class BulkItem(RequestModel):
    text: BulkText
    namespace: Namespace = "default"
    # Beyond upstream (MemWal #940): per item, as on /api/remember; a replay returns the original job.
    idempotency_key: IdempotencyKey | None = None
    tags: Tags | None = None  # beyond upstream, as on /api/remember
    ttl_seconds: TtlSeconds | None = None


class RememberBulkRequest(RequestModel):
    items: list[BulkItem] = Field(json_schema_extra={"minItems": 1, "maxItems": MAX_BULK_ITEMS})

    @model_validator(mode="after")
    def _check(self) -> RememberBulkRequest:
        if not 1 <= len(self.items) <= MAX_BULK_ITEMS:
            raise invalid_value(f"`items` must have 1..{MAX_BULK_ITEMS} entries, got {len(self.items)}")
        return self


class BulkStatusRequest(RequestModel):
    job_ids: JobIds


class ManualRememberRequest(RequestModel):
    encrypted_data: EncryptedData
    vector: Vector
    namespace: Namespace = "default"
    tags: Tags | None = None  # beyond upstream, as on /api/remember
    ttl_seconds: TtlSeconds | None = None


RecallSort = Literal["relevance", "recent"]


class RecallRequest(RequestModel):
    query: QueryText
    limit: Limit = None
    namespace: Namespace = "default"
    scoring_weights: ScoringWeightsBody | None = None
    # relevance: distance order (the default). recent: newest first among the closest candidates. Either one,
    # when given, is the order: scoring_weights are then ignored (upstream's precedence).
    sort: RecallSort | None = None
    # Beyond upstream: only memories carrying every one of these tags (all-of).
    tags: Tags | None = None


class ManualRecallRequest(RequestModel):
    vector: Vector
    limit: Limit = None
    namespace: Namespace = "default"
    scoring_weights: ScoringWeightsBody | None = None
    tags: Tags | None = None  # beyond upstream, as on /api/recall


class AskRequest(RequestModel):
    question: QuestionText
    limit: Limit = None
    namespace: Namespace = "default"


class EmbedRequest(RequestModel):
    text: EmbedText


class AnalyzeRequest(RequestModel):
    text: AnalyzeText
    namespace: Namespace = "default"
    occurred_at: OccurredAt | None = None


class RestoreRequest(RequestModel):
    namespace: NamespaceName
    limit: Limit = None


class ForgetRequest(RequestModel):
    namespace: NamespaceName


class ForgetMemoryRequest(RequestModel):
    """Beyond upstream: forget one memory by its id (the remember job id, or a listing's ``memory_id``)."""

    memory_id: MemoryId


class StatsRequest(RequestModel):
    namespace: Namespace = "default"


class OwnerTokenRequest(RequestModel):
    owner: Annotated[str, Field(json_schema_extra={"maxLength": 66})]  # checked as a 0x + 64-hex address by the route
    # Beyond upstream: a shorter life than OWNER_TOKEN_TTL_SECS (never longer).
    ttl_seconds: Annotated[int, Field(ge=1, json_schema_extra={"maximum": 86_400})] | None = None


class RevokeOwnerTokenRequest(RequestModel):
    token: Annotated[str, Field(json_schema_extra={"minLength": 1, "maxLength": 128})]


class EmptyRequest(RequestModel):
    """A body-less request (GET)."""


# --- responses ------------------------------------------------------------------------------------------


class ResponseModel(BaseModel):
    """Base of every answer body. Optional fields are left out when unset (upstream omits them)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


JobState = Literal["pending", "running", "uploaded", "done", "failed"]


class ErrorBody(ResponseModel):
    error: str
    # Session-chain conflicts and verification failures (relayer/sessions/errors.py) say which case and where.
    kind: str | None = None
    head_sequence: int | None = None
    head_blob_id: str | None = None
    sequence: int | None = None
    blob_ids: list[str] | None = None


class RateLimitBody(ResponseModel):
    error: str
    layer: Literal["delegate_key", "account_burst", "account_sustained"]
    limit: str
    retry_after_seconds: int


class RememberAccepted(ResponseModel):
    job_id: str
    status: JobState


class JobStatusBody(ResponseModel):
    job_id: str
    status: JobState
    owner: str
    namespace: str
    blob_id: str | None = None
    error: str | None = None


class BulkAccepted(ResponseModel):
    job_ids: list[str]
    total: int
    status: Literal["pending"]


class BulkStatusEntry(ResponseModel):
    job_id: str
    status: JobState | Literal["not_found"]
    blob_id: str | None = None
    error: str | None = None


class BulkStatusBody(ResponseModel):
    results: list[BulkStatusEntry]


class ManualRememberBody(ResponseModel):
    id: str
    blob_id: str
    owner: str
    namespace: str


class RecallResult(ResponseModel):
    blob_id: str
    text: str
    distance: float
    created_at: str
    score: float | None = None
    memory_id: str | None = None  # beyond upstream: what /api/forget/memory takes
    tags: list[str] | None = None  # beyond upstream: the memory's tags, when it has any


class RecallBody(ResponseModel):
    results: list[RecallResult]
    total: int
    dropped_count: int | None = None


class ManualRecallResult(ResponseModel):
    blob_id: str
    distance: float
    created_at: str
    importance: float
    memory_id: str | None = None  # beyond upstream, as on /api/recall
    tags: list[str] | None = None


class ManualRecallBody(ResponseModel):
    results: list[ManualRecallResult]
    total: int


class AskMemory(ResponseModel):
    blob_id: str
    text: str
    distance: float


class AskBody(ResponseModel):
    answer: str
    memories_used: int
    memories: list[AskMemory]


class EmbedBody(ResponseModel):
    vector: list[float]
    # The model, so a client computing vectors for the manual routes can use the same one.
    model: str
    provider: str
    dimensions: int


class Fact(ResponseModel):
    text: str
    id: str
    job_id: str


class AnalyzeBody(ResponseModel):
    job_ids: list[str]
    facts: list[Fact]
    fact_count: int
    status: Literal["pending"]
    owner: str


class RestoreBody(ResponseModel):
    restored: int
    skipped: int
    total: int
    namespace: str
    owner: str
    truncated: bool
    failed: int


class ForgetBody(ResponseModel):
    deleted: int
    namespace: str
    owner: str


class ForgetMemoryBody(ResponseModel):
    """A forgotten memory. A repeated forget answers the same (from the memory's tombstone)."""

    memory_id: str
    reason: Literal["forgotten", "expired"]  # expired: the expiry sweep forgot it when its TTL ran out
    forgotten_at: str  # RFC 3339, UTC
    blob_id: str | None  # null: no blob was stored when it was forgotten
    # held_by_owner: the Walrus blob stays (a Seal ciphertext only the owner's keys open) until its end epoch; the
    # server wallet hands every Blob to its owner, so only the owner's wallet can delete it (it is deletable).
    # not_uploaded: forgotten while its remember job was queued; the job then stores nothing on Walrus (one that
    # was already uploading may still finish: a repeated forget shows that blob).
    blob_deleted: bool
    blob_status: Literal["held_by_owner", "not_uploaded"]

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")  # blob_id: null is an answer, not an omission


class StatsBody(ResponseModel):
    memory_count: int
    storage_bytes: int
    namespace: str
    owner: str


class NamespaceSummaryBody(ResponseModel):
    id: str
    name: str
    memory_count: int
    storage_used: int
    updated_at: str


class NamespacePageBody(ResponseModel):
    namespaces: list[NamespaceSummaryBody]
    next_cursor: str
    has_more: bool
    snapshot_version: int


class MemoryItemBody(ResponseModel):
    """One memory's index row: where it is and what it costs, never its content (upstream MemoryItem)."""

    memory_id: str
    namespace_id: str  # the namespace's name, as upstream
    blob_id: str
    created_at: str  # RFC 3339, UTC
    size: int  # ciphertext bytes
    agent_id: str | None  # the delegate key (hex) that wrote it, when known
    package_id: str | None
    status: Literal["active", "expired"]
    end_epoch: int | None  # the Walrus epoch the blob is stored until, once recorded
    expires_at: str | None  # the memory's TTL end (null: no TTL); past it the memory is no longer listed
    tags: list[str]  # beyond upstream: the memory's tags (plaintext labels), possibly none


class MemoryPageBody(ResponseModel):
    memories: list[MemoryItemBody]
    next_cursor: str | None  # null on the last page
    has_more: bool  # beyond upstream: the same as next_cursor being set
    snapshot_version: int  # the walk's snapshot; every page of one walk carries the same value

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")  # upstream sends the nulls


class AgentBody(ResponseModel):
    label: str
    sui_address: str


class AgentsBody(ResponseModel):
    agents: list[AgentBody]
    snapshot_version: int  # the account object's on-chain version: it moves when a delegate key is added or removed


class OwnerTokenBody(ResponseModel):
    token: str  # shown once; the relayer keeps only its SHA-256
    expires_at: str  # RFC 3339, seconds, Z
    permissions: list[str]


class RevokeOwnerTokenBody(ResponseModel):
    revoked: bool  # false: unknown, expired or already revoked


class AccountExistsBody(ResponseModel):
    exists: bool


class DependencyStatus(ResponseModel):
    """One dependency as the background health monitor last saw it."""

    ok: bool
    checked_at: str | None = None  # RFC 3339; absent before the first probe
    error: str | None = None  # a short reason, never a secret or a payload


class HealthBody(ResponseModel):
    model_config = ConfigDict(frozen=True, extra="allow")  # the /version fields are folded in
    status: Literal["ok", "degraded"]
    version: str
    mode: str
    prompt_versions: dict[str, str]
    write_ready: bool
    dependencies: dict[str, DependencyStatus]


class VersionBody(ResponseModel):
    relayerVersion: str
    apiVersion: str
    minSupportedSdk: dict[str, str]
    featureFlags: dict[str, bool]
    deprecations: list[dict[str, str]]
    build: dict[str, str]


class EmbeddingModelBody(ResponseModel):
    provider: str
    model: str
    dimensions: int
    storedDimensions: int
    padding: Literal["zeros", "none"]


class ConfigBody(ResponseModel):
    packageId: str
    network: str
    suiRpcUrl: str
    rateLimitDisabled: bool
    embedding: EmbeddingModelBody
    egressPolicy: str
    llm: str  # available | not-configured | refused-by-egress-policy



# --- session chains (relayer/sessions/) -----------------------------------------------------------------

SessionId = Annotated[str, Field(pattern=SESSION_ID_PATTERN, json_schema_extra={"minLength": 1, "maxLength": 128})]
SessionText = Annotated[str, *text_rules("text", MAX_FRAME_TEXT_BYTES)]
SessionSequence = Annotated[int, Field(ge=0, le=MAX_SEQUENCE)]
# A head is named by its sequence (-1: the session must not exist yet) or its blob id.
ExpectedHead = Annotated[int, Field(ge=-1, le=MAX_SEQUENCE)] | Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,128}$")]
SessionMetadata = Annotated[dict[str, str], Field(json_schema_extra={"maxProperties": MAX_METADATA_ENTRIES})]


class SessionAppendRequest(RequestModel):
    session_id: SessionId
    role: Role
    text: SessionText
    metadata: SessionMetadata | None = None
    expected_head: ExpectedHead | None = None

    @model_validator(mode="after")
    def _check(self) -> SessionAppendRequest:
        metadata = self.metadata or {}
        if len(metadata) > MAX_METADATA_ENTRIES or not all(
            0 < len(key) <= MAX_METADATA_KEY_LENGTH and len(value) <= MAX_METADATA_VALUE_LENGTH for key, value in metadata.items()
        ):
            raise invalid_value(f"`metadata` maps at most {MAX_METADATA_ENTRIES} keys of 1..{MAX_METADATA_KEY_LENGTH} "
                                f"characters to strings of at most {MAX_METADATA_VALUE_LENGTH}")
        if any(_SURROGATES.search(text) for item in metadata.items() for text in item):
            raise invalid_value("`metadata` must be valid Unicode")
        return self


class SessionReadRequest(RequestModel):
    session_id: SessionId
    last_n: Annotated[int, Field(ge=1, le=MAX_WINDOW_TURNS)] | None = None  # default DEFAULT_WINDOW_TURNS
    since_sequence: SessionSequence | None = None

    @model_validator(mode="after")
    def _check(self) -> SessionReadRequest:
        if self.last_n is not None and self.since_sequence is not None:
            raise invalid_value("give `last_n` or `since_sequence`, not both")
        return self


class SessionListRequest(RequestModel):
    """No fields: the caller's own sessions."""


class SessionCloseRequest(RequestModel):
    session_id: SessionId
    expected_head: ExpectedHead | None = None


class SessionAppendBody(ResponseModel):
    session_id: str
    sequence: int
    blob_id: str
    prev_blob_id: str | None = None


class SessionTurnBody(ResponseModel):
    sequence: int
    role: str
    text: str
    metadata: dict[str, str]
    blob_id: str
    closed: bool


class SessionReadBody(ResponseModel):
    session_id: str
    head_sequence: int
    head_blob_id: str
    closed: bool
    turns: list[SessionTurnBody]
    # Blobs that lost a race for a sequence in the window (same parent as the chosen frame): never history.
    siblings: list[str]


class SessionSummaryBody(ResponseModel):
    session_id: str
    head_sequence: int
    head_blob_id: str
    head_claims: int
    closed: bool


class SessionListBody(ResponseModel):
    sessions: list[SessionSummaryBody]


# --- MCP's OAuth consent step (relayer/mcp/oauth.py) ---


class OAuthApproveRequest(RequestModel):
    request: str = Field(min_length=1, max_length=64)  # the id /authorize put in the consent URL


class OAuthApproval(ResponseModel):
    redirect_to: str  # the client's redirect URI with the one-time code and its state


class OAuthConsentBody(ResponseModel):
    request: str
    client_id: str
    client_name: str
    redirect_uri: str  # where the code will go: check it before approving
    scopes: list[str]
    expires_at: str
    approve_path: str  # POST {"request": …} there, signed by a delegate key of the account


class ListNamespacesArguments(RequestModel):
    """The MCP list_namespaces tool's arguments: GET /v1/owners/{owner}/namespaces's query, as JSON."""

    updated_after: str | None = Field(default=None, max_length=512)  # the next_cursor of an earlier page
    limit: int | None = Field(default=None, ge=1, le=999_999_999)


class JsonRpcMessage(RequestModel):
    """What POST /api/mcp takes (documentation only: the MCP server parses and answers it)."""

    jsonrpc: Literal["2.0"]
    method: str
    id: int | str | None = None
    params: dict[str, Any] | None = None


class JsonRpcAnswer(ResponseModel):
    """What POST /api/mcp answers to a request (a notification gets 202 and no body)."""

    jsonrpc: Literal["2.0"]
    id: int | str | None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
