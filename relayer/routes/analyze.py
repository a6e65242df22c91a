"""POST /api/analyze: extract facts with the LLM, then queue one remember job per fact.

Dedup context (the namespace's closest existing memories) is best effort with short timeouts, as
upstream. The extra rate-limit weight (one per fact) is charged after extraction without resetting
the windows (upstream's analyze bug is not reproduced).
"""

from __future__ import annotations

import asyncio
import logging

from starlette.routing import Route

from relayer.api_models import AnalyzeBody, AnalyzeRequest, Fact
from relayer.database.errors import DatabaseError
from relayer.database.jobs import JobKind
from relayer.embeddings import Embedder
from relayer.errors import RelayerError
from relayer.job_runner import JobRunner
from relayer.llm import LanguageModel
from relayer.memory_decryption import MemoryReader
from relayer.memory_preparation import MemoryPreparer, MemoryText, remember_job
from relayer.memory_storage import MemoryStorage
from relayer.rate_limit import RateLimiter
from relayer.signed_routes import Handler, RequestContext, SignedRoutes

logger = logging.getLogger("memwal.analyze")

RELATED_LIMIT = 10
RELATED_TIMEOUT_SECONDS = 1.6
PREPARE_BATCH = 5  # bounded fan-out, as upstream


async def related_memories(embedder: Embedder, reader: MemoryReader, ctx: RequestContext[AnalyzeRequest], text: str, namespace: str) -> list[str]:
    """The namespace's closest memories as dedup context; any failure or a slow answer yields none."""
    session = ctx.auth.seal_session
    if not session:
        return []

    async def load() -> list[str]:
        vector = await embedder.embed(text)
        hits, opened = await reader.recall(ctx.auth, namespace, vector, RELATED_LIMIT, session=session, request_id=ctx.request_id)
        return [opened.texts[h.blob_id] for h in hits if h.blob_id in opened.texts]

    try:
        return await asyncio.wait_for(load(), RELATED_TIMEOUT_SECONDS)
    except (TimeoutError, RelayerError, DatabaseError) as exc:
        logger.info("analyze dedup context skipped: %s", type(exc).__name__)
        return []


def analyze(
    embedder: Embedder, reader: MemoryReader, llm: LanguageModel, limiter: RateLimiter, preparer: MemoryPreparer,
    runner: JobRunner, storage: MemoryStorage,
) -> Handler:
    async def handle(ctx: RequestContext[AnalyzeRequest]) -> AnalyzeBody:
        text, namespace, occurred_at = ctx.body.text, ctx.body.namespace, ctx.body.occurred_at
        llm.require("analyze")
        related = await related_memories(embedder, reader, ctx, text, namespace)
        facts = await llm.extract_facts(text, related=related, occurred_at=occurred_at)
        if not facts:
            return AnalyzeBody(job_ids=[], facts=[], fact_count=0, status="pending", owner=ctx.auth.owner)
        await limiter.charge(ctx.auth.public_key_hex, ctx.auth.owner, len(facts))
        prepared = []
        for start in range(0, len(facts), PREPARE_BATCH):
            batch = facts[start : start + PREPARE_BATCH]
            items = [MemoryText(fact.text, namespace, fact.importance) for fact in batch]
            prepared += await preparer.prepare(ctx.auth.owner, items, request_id=ctx.request_id)
        await storage.check_quota(ctx.auth.owner, sum(len(memory.ciphertext) for memory in prepared))
        job_ids = [(await runner.submit(remember_job(ctx.auth, memory, JobKind.ANALYZE))).id for memory in prepared]
        return AnalyzeBody(
            job_ids=job_ids,
            facts=[Fact(text=fact.text, id=job_id, job_id=job_id) for fact, job_id in zip(facts, job_ids, strict=True)],
            fact_count=len(facts),
            status="pending",
            owner=ctx.auth.owner,
        )

    return handle


def routes(
    signed: SignedRoutes, *, embedder: Embedder, reader: MemoryReader, llm: LanguageModel, limiter: RateLimiter,
    preparer: MemoryPreparer, runner: JobRunner, storage: MemoryStorage,
) -> list[Route]:
    return [
        signed.route("/api/analyze", analyze(embedder, reader, llm, limiter, preparer, runner, storage),
                     summary="Extract facts from a text and remember each", request=AnalyzeRequest, response=AnalyzeBody,
                     status=202, errors=(402, 403, 501, 502)),
    ]
