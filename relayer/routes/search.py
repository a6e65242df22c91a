"""Reading memories: recall, manual recall, ask, and embed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.routing import Route

from relayer.database.vectors import VectorStore
from relayer.embeddings import Embedder
from relayer.llm import LanguageModel, Memory
from relayer.memory_decryption import MemoryReader, seal_session
from relayer.ranking import parse_scoring_weights, rank, score, utc_now
from relayer.signed_routes import Handler, RequestContext, SignedRoutes
from relayer.validation import (
    MAX_EMBED_TEXT_BYTES,
    MAX_QUERY_BYTES,
    limit_field,
    namespace_field,
    text_field,
    vector_field,
)


def _timestamp(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def recall(embedder: Embedder, reader: MemoryReader) -> Handler:
    async def handle(ctx: RequestContext) -> tuple[int, Any]:
        query = text_field(ctx.body, "query", max_bytes=MAX_QUERY_BYTES, empty_message="Query cannot be empty")
        limit = limit_field(ctx.body, default=10)
        namespace = namespace_field(ctx.body)
        weights = parse_scoring_weights(ctx.body.get("scoring_weights"))
        session = seal_session(ctx.auth)
        vector = await embedder.embed_query(query)
        hits, opened = await reader.recall(ctx.auth, namespace, vector, limit, session=session, request_id=ctx.request_id)
        kept = [hit for hit in hits if hit.blob_id in opened.texts]
        results: list[dict[str, Any]] = []
        if weights.active:
            now = utc_now()
            scored = rank(kept, [score(weights, distance=h.distance, created_at=h.created_at, importance=h.importance, now=now) for h in kept])
            for hit, value in scored:
                results.append({"blob_id": hit.blob_id, "text": opened.texts[hit.blob_id], "distance": hit.distance,
                                "score": value, "created_at": _timestamp(hit.created_at)})
        else:
            for hit in kept:
                results.append({"blob_id": hit.blob_id, "text": opened.texts[hit.blob_id], "distance": hit.distance,
                                "created_at": _timestamp(hit.created_at)})
        body: dict[str, Any] = {"results": results, "total": len(results)}
        if opened.dropped:
            body["dropped_count"] = opened.dropped
        return 200, body

    return handle


def recall_manual(vectors: VectorStore) -> Handler:
    async def handle(ctx: RequestContext) -> tuple[int, Any]:
        vector = vector_field(ctx.body)
        limit = limit_field(ctx.body, default=10)
        namespace = namespace_field(ctx.body)
        weights = parse_scoring_weights(ctx.body.get("scoring_weights"))
        hits = await vectors.search(ctx.auth.owner, namespace, vector, limit)
        if weights.active:
            now = utc_now()
            hits = [h for h, _ in rank(hits, [score(weights, distance=h.distance, created_at=h.created_at, importance=h.importance, now=now) for h in hits])]
        results = [
            {"blob_id": h.blob_id, "distance": h.distance, "created_at": _timestamp(h.created_at), "importance": h.importance}
            for h in hits
        ]
        return 200, {"results": results, "total": len(results)}

    return handle


def ask(embedder: Embedder, reader: MemoryReader, llm: LanguageModel) -> Handler:
    async def handle(ctx: RequestContext) -> tuple[int, Any]:
        question = text_field(ctx.body, "question", max_bytes=MAX_QUERY_BYTES, empty_message="Question cannot be empty")
        limit = limit_field(ctx.body, default=5)
        namespace = namespace_field(ctx.body)
        session = seal_session(ctx.auth)
        llm.require("ask")
        vector = await embedder.embed(question)
        hits, opened = await reader.recall(ctx.auth, namespace, vector, limit, session=session, request_id=ctx.request_id)
        memories = [Memory(h.blob_id, opened.texts[h.blob_id], h.distance) for h in hits if h.blob_id in opened.texts]
        answer = await llm.answer(question, memories)
        return 200, {
            "answer": answer,
            "memories_used": len(memories),
            "memories": [{"blob_id": m.blob_id, "text": m.text, "distance": m.distance} for m in memories],
        }

    return handle


def embed(embedder: Embedder) -> Handler:
    async def handle(ctx: RequestContext) -> tuple[int, Any]:
        text = text_field(ctx.body, "text", max_bytes=MAX_EMBED_TEXT_BYTES, empty_message="text cannot be empty")
        vector = await embedder.embed(text)
        # The model, so a client computing vectors for the manual routes can use the same one.
        description = embedder.description
        return 200, {"vector": vector, "model": description.model, "provider": description.provider,
                     "dimensions": description.dimensions}  # fmt: skip

    return handle


def routes(signed: SignedRoutes, *, embedder: Embedder, reader: MemoryReader, vectors: VectorStore, llm: LanguageModel) -> list[Route]:
    return [
        signed.route("/api/recall", recall(embedder, reader)),
        signed.route("/api/recall/manual", recall_manual(vectors)),
        signed.route("/api/ask", ask(embedder, reader, llm)),
        signed.route("/api/embed", embed(embedder)),
    ]
