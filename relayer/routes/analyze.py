"""POST /api/analyze: extract facts with the LLM, then queue one remember job per fact.

Dedup context (the namespace's closest existing memories) is best effort with short timeouts, as
upstream. The extra rate-limit weight (one per fact) is charged after extraction without resetting
the windows (upstream's analyze bug is not reproduced).
"""

from __future__ import annotations

import asyncio
import logging

from starlette.routing import Route

from relayer.database.jobs import JobKind
from relayer.errors import ApiError, InternalError
from relayer.memory_decryption import recall_memories
from relayer.routes.memories import enqueue, prepare
from relayer.signed_routes import RequestContext, protected
from relayer.validation import MAX_ANALYZE_TEXT_BYTES, namespace_field, occurred_at_field, text_field

logger = logging.getLogger("memwal.analyze")

RELATED_LIMIT = 10
RELATED_TIMEOUT_SECONDS = 1.6


def routes(services) -> list[Route]:
    async def related_memories(ctx: RequestContext, text: str, namespace: str) -> list[str]:
        session = ctx.auth.seal_session
        if not session:
            return []

        async def load() -> list[str]:
            vector = await services.embedder.embed(text)
            hits, hydrated = await recall_memories(services, ctx, vector, namespace, RELATED_LIMIT, session=session)
            return [hydrated.texts[h.blob_id] for h in hits if h.blob_id in hydrated.texts]

        try:
            return await asyncio.wait_for(load(), RELATED_TIMEOUT_SECONDS)
        except (TimeoutError, ApiError) as exc:
            logger.info("analyze dedup context skipped: %s", type(exc).__name__)
            return []

    async def analyze(ctx: RequestContext):
        text = text_field(ctx.body, "text", max_bytes=MAX_ANALYZE_TEXT_BYTES)
        namespace = namespace_field(ctx.body)
        occurred_at = occurred_at_field(ctx.body)
        if not services.llm.available:
            raise InternalError("analyze needs an LLM: set OPENAI_API_KEY")
        related = await related_memories(ctx, text, namespace)
        facts = await services.llm.extract_facts(text, related=related, occurred_at=occurred_at)
        if not facts:
            return 202, {"job_ids": [], "facts": [], "fact_count": 0, "status": "pending", "owner": ctx.auth.owner}
        await services.limiter.charge(ctx.auth.public_key_hex, ctx.auth.owner, len(facts))
        prepared = []
        for start in range(0, len(facts), 5):  # bounded fan-out, as upstream
            batch = facts[start : start + 5]
            prepared += await prepare(services, ctx, [(fact.text, namespace, fact.importance) for fact in batch])
        job_ids = []
        for memory in prepared:
            job_ids.append((await enqueue(services, ctx, memory, kind=JobKind.ANALYZE)).id)
        return 202, {
            "job_ids": job_ids,
            "facts": [{"text": fact.text, "id": job_id, "job_id": job_id} for fact, job_id in zip(facts, job_ids, strict=True)],
            "fact_count": len(facts),
            "status": "pending",
            "owner": ctx.auth.owner,
        }

    return [Route("/api/analyze", protected(services, analyze, route="/api/analyze"), methods=["POST"])]
