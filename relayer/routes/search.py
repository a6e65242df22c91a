"""Reading memories: recall, manual recall, ask, and embed."""

from __future__ import annotations

from datetime import datetime

from starlette.routing import Route

from relayer.api_models import (
    AskBody,
    AskMemory,
    AskRequest,
    EmbedBody,
    EmbedRequest,
    ManualRecallBody,
    ManualRecallRequest,
    ManualRecallResult,
    RecallBody,
    RecallRequest,
    RecallResult,
    scoring_weights,
)
from relayer.database.vector_search import Hit
from relayer.database.vectors import VectorStore
from relayer.embeddings import Embedder
from relayer.llm import LanguageModel, Memory
from relayer.memory_decryption import MemoryReader, seal_session
from relayer.memory_metadata import MetadataPolicy
from relayer.ranking import rank, score, utc_now
from relayer.signed_routes import Handler, RequestContext, SignedRoutes
from relayer.validation import MAX_LIMIT

DEFAULT_RECALL_LIMIT = 10
DEFAULT_ASK_LIMIT = 5
RECENT_OVERFETCH = 5  # sort=recent reads this many candidates per requested result …
RECENT_MAX_CANDIDATES = 50  # … but no more than this (unless the limit itself is larger)


def _timestamp(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _limit(value: int | None, default: int) -> int:
    return default if value is None else min(value, MAX_LIMIT)


def recall_candidates(sort: str | None, limit: int) -> int:
    """Rows to fetch: ``recent`` orders the closest few-times-``limit`` by time (a newer but unrelated memory
    must not win), capped at 50 unless ``limit`` itself is larger (upstream's RecallSort::candidate_limit)."""
    return max(min(limit * RECENT_OVERFETCH, RECENT_MAX_CANDIDATES), limit) if sort == "recent" else limit


def select_for_sort(hits: list[Hit], sort: str | None, limit: int) -> list[Hit]:
    """``recent``: newest first, the closer one first among equal times; otherwise distance order as fetched."""
    if sort == "recent":
        hits = sorted(hits, key=lambda hit: (-hit.created_at.timestamp(), hit.distance))
    return hits[:limit]


def _tags(hit: Hit) -> list[str] | None:
    return list(hit.tags) if hit.tags else None


def recall(embedder: Embedder, reader: MemoryReader, vectors: VectorStore, policy: MetadataPolicy) -> Handler:
    async def handle(ctx: RequestContext[RecallRequest]) -> RecallBody:
        body = ctx.body
        tags = policy.tags(body.tags)
        # An explicit sort is the order: scoring weights would re-rank it into neither order (upstream WALM-383).
        weights = scoring_weights(None if body.sort is not None else body.scoring_weights)
        session = seal_session(ctx.auth)
        vector = await embedder.embed_query(body.query)
        limit = _limit(body.limit, DEFAULT_RECALL_LIMIT)
        found = await vectors.search(ctx.auth.owner, body.namespace, vector, recall_candidates(body.sort, limit), tags=tags)
        hits = select_for_sort(found, body.sort, limit)
        opened = await reader.open(ctx.auth, [hit.blob_id for hit in hits], session=session, request_id=ctx.request_id)
        kept = [hit for hit in hits if hit.blob_id in opened.texts]
        results: list[RecallResult] = []
        if weights.active:
            now = utc_now()
            scored = rank(kept, [score(weights, distance=h.distance, created_at=h.created_at, importance=h.importance, now=now) for h in kept])
            for hit, value in scored:
                results.append(RecallResult(blob_id=hit.blob_id, text=opened.texts[hit.blob_id], distance=hit.distance,
                                            score=value, created_at=_timestamp(hit.created_at), memory_id=hit.id,
                                            tags=_tags(hit)))
        else:
            for hit in kept:
                results.append(RecallResult(blob_id=hit.blob_id, text=opened.texts[hit.blob_id], distance=hit.distance,
                                            created_at=_timestamp(hit.created_at), memory_id=hit.id, tags=_tags(hit)))
        return RecallBody(results=results, total=len(results), dropped_count=opened.dropped or None)

    return handle


def recall_manual(vectors: VectorStore, policy: MetadataPolicy) -> Handler:
    async def handle(ctx: RequestContext[ManualRecallRequest]) -> ManualRecallBody:
        body = ctx.body
        weights = scoring_weights(body.scoring_weights)
        tags = policy.tags(body.tags)
        hits = await vectors.search(ctx.auth.owner, body.namespace, body.vector, _limit(body.limit, DEFAULT_RECALL_LIMIT), tags=tags)
        if weights.active:
            now = utc_now()
            hits = [h for h, _ in rank(hits, [score(weights, distance=h.distance, created_at=h.created_at, importance=h.importance, now=now) for h in hits])]
        results = [
            ManualRecallResult(blob_id=h.blob_id, distance=h.distance, created_at=_timestamp(h.created_at), importance=h.importance,
                               memory_id=h.id, tags=_tags(h))
            for h in hits
        ]
        return ManualRecallBody(results=results, total=len(results))

    return handle


def ask(embedder: Embedder, reader: MemoryReader, llm: LanguageModel) -> Handler:
    async def handle(ctx: RequestContext[AskRequest]) -> AskBody:
        body = ctx.body
        session = seal_session(ctx.auth)
        llm.require("ask")
        vector = await embedder.embed(body.question)
        hits, opened = await reader.recall(ctx.auth, body.namespace, vector, _limit(body.limit, DEFAULT_ASK_LIMIT),
                                           session=session, request_id=ctx.request_id)
        memories = [Memory(h.blob_id, opened.texts[h.blob_id], h.distance) for h in hits if h.blob_id in opened.texts]
        answer = await llm.answer(body.question, memories)
        return AskBody(
            answer=answer,
            memories_used=len(memories),
            memories=[AskMemory(blob_id=m.blob_id, text=m.text, distance=m.distance) for m in memories],
        )

    return handle


def embed(embedder: Embedder) -> Handler:
    async def handle(ctx: RequestContext[EmbedRequest]) -> EmbedBody:
        vector = await embedder.embed(ctx.body.text)
        description = embedder.description
        return EmbedBody(vector=vector, model=description.model, provider=description.provider,
                         dimensions=description.dimensions)

    return handle


def routes(signed: SignedRoutes, *, embedder: Embedder, reader: MemoryReader, vectors: VectorStore, llm: LanguageModel,
           metadata: MetadataPolicy) -> list[Route]:
    return [
        signed.route("/api/recall", recall(embedder, reader, vectors, metadata), summary="Search and decrypt the caller's memories",
                     request=RecallRequest, response=RecallBody, errors=(403, 502)),
        signed.route("/api/recall/manual", recall_manual(vectors, metadata), summary="Search by a client-made vector (no decryption)",
                     request=ManualRecallRequest, response=ManualRecallBody),
        signed.route("/api/ask", ask(embedder, reader, llm), summary="Answer a question from the caller's memories",
                     request=AskRequest, response=AskBody, errors=(403, 501, 502)),
        signed.route("/api/embed", embed(embedder), summary="Embed a text", request=EmbedRequest, response=EmbedBody,
                     errors=(502,)),
    ]
