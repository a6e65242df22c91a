"""Reading memories: recall, manual recall, ask, and embed."""

from __future__ import annotations

from starlette.routing import Route

from relayer.llm import Memory
from relayer.memory_decryption import recall_memories, require_session
from relayer.ranking import parse_scoring_weights, rank, score, utc_now
from relayer.signed_routes import RequestContext, protected
from relayer.validation import (
    MAX_EMBED_TEXT_BYTES,
    MAX_QUERY_BYTES,
    limit_field,
    namespace_field,
    text_field,
    vector_field,
)


def _timestamp(value) -> str:
    return value.isoformat().replace("+00:00", "Z")


def routes(services) -> list[Route]:
    async def recall(ctx: RequestContext):
        query = text_field(ctx.body, "query", max_bytes=MAX_QUERY_BYTES, empty_message="Query cannot be empty")
        limit = limit_field(ctx.body, default=10)
        namespace = namespace_field(ctx.body)
        weights = parse_scoring_weights(ctx.body.get("scoring_weights"))
        session = require_session(ctx.auth.seal_session)
        vector = await services.embedder.embed_query(query)
        hits, hydrated = await recall_memories(services, ctx, vector, namespace, limit, session=session)
        kept = [hit for hit in hits if hit.blob_id in hydrated.texts]
        results = []
        if weights.active:
            now = utc_now()
            scored = rank(kept, [score(weights, distance=h.distance, created_at=h.created_at, importance=h.importance, now=now) for h in kept])
            for hit, value in scored:
                results.append({"blob_id": hit.blob_id, "text": hydrated.texts[hit.blob_id], "distance": hit.distance,
                                "score": value, "created_at": _timestamp(hit.created_at)})
        else:
            for hit in kept:
                results.append({"blob_id": hit.blob_id, "text": hydrated.texts[hit.blob_id], "distance": hit.distance,
                                "created_at": _timestamp(hit.created_at)})
        body = {"results": results, "total": len(results)}
        if hydrated.dropped:
            body["dropped_count"] = hydrated.dropped
        return 200, body

    async def recall_manual(ctx: RequestContext):
        vector = vector_field(ctx.body)
        limit = limit_field(ctx.body, default=10)
        namespace = namespace_field(ctx.body)
        weights = parse_scoring_weights(ctx.body.get("scoring_weights"))
        hits = await services.vectors.search(ctx.auth.owner, namespace, vector, limit)
        if weights.active:
            now = utc_now()
            hits = [h for h, _ in rank(hits, [score(weights, distance=h.distance, created_at=h.created_at, importance=h.importance, now=now) for h in hits])]
        results = [
            {"blob_id": h.blob_id, "distance": h.distance, "created_at": _timestamp(h.created_at), "importance": h.importance}
            for h in hits
        ]
        return 200, {"results": results, "total": len(results)}

    async def ask(ctx: RequestContext):
        question = text_field(ctx.body, "question", max_bytes=MAX_QUERY_BYTES, empty_message="Question cannot be empty")
        limit = limit_field(ctx.body, default=5)
        namespace = namespace_field(ctx.body)
        session = require_session(ctx.auth.seal_session)
        if not services.llm.available:
            from relayer.errors import InternalError

            raise InternalError("ask needs an LLM: set OPENAI_API_KEY")
        vector = await services.embedder.embed(question)
        hits, hydrated = await recall_memories(services, ctx, vector, namespace, limit, session=session)
        memories = [Memory(h.blob_id, hydrated.texts[h.blob_id], h.distance) for h in hits if h.blob_id in hydrated.texts]
        answer = await services.llm.answer(question, memories)
        return 200, {
            "answer": answer,
            "memories_used": len(memories),
            "memories": [{"blob_id": m.blob_id, "text": m.text, "distance": m.distance} for m in memories],
        }

    async def embed(ctx: RequestContext):
        text = text_field(ctx.body, "text", max_bytes=MAX_EMBED_TEXT_BYTES, empty_message="text cannot be empty")
        return 200, {"vector": await services.embedder.embed(text)}

    def route(path: str, handler) -> Route:
        return Route(path, protected(services, handler, route=path), methods=["POST"])

    return [
        route("/api/recall", recall),
        route("/api/recall/manual", recall_manual),
        route("/api/ask", ask),
        route("/api/embed", embed),
    ]
