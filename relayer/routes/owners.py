"""The owner-scoped read API: GET /v1/owners/{owner}/namespaces|memories|agents (upstream memory_read.rs).

Each route goes through relayer/owner_access.py (an owner token or the delegate-key signature, then the read
budget). Shapes: ``namespaces`` is SDK 0.2.1's ``NamespacesResult``; ``memories`` and ``agents`` are upstream's
(no SDK method calls them), plus ``has_more`` on memories.
"""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.routing import Route

from chain.reader import ChainReader
from relayer.api_models import AgentBody, AgentsBody, MemoryItemBody, MemoryPageBody, NamespacePageBody
from relayer.database.memory_listing import MemoryIndex, MemoryPage
from relayer.database.namespaces import NamespaceIndex
from relayer.errors import NotFound
from relayer.openapi import QueryParameter
from relayer.owner_access import OwnerReadContext, OwnerReadHandler, OwnerReadRoutes
from relayer.validation import check_query_text, query_integer

DEFAULT_PAGE = 100
MAX_PAGE = 500
MAX_CURSOR_LENGTH = 512
PAGE_QUERY = (
    QueryParameter("limit", {"type": "integer", "minimum": 1, "maximum": 999_999_999},
                   f"page size (ASCII digits); larger than {MAX_PAGE} is {MAX_PAGE}"),
    QueryParameter("updated_after", {"type": "string", "maxLength": MAX_CURSOR_LENGTH}, "the next_cursor of an earlier page"),
)


def _page_request(ctx: OwnerReadContext) -> tuple[str | None, int]:
    limit = query_integer(ctx.query.get("limit"), "limit")
    cursor = check_query_text(ctx.query.get("updated_after"), "updated_after", max_length=MAX_CURSOR_LENGTH)
    return cursor, DEFAULT_PAGE if limit is None else min(limit, MAX_PAGE)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def namespaces(index: NamespaceIndex) -> OwnerReadHandler:
    async def handle(ctx: OwnerReadContext) -> NamespacePageBody:
        cursor, limit = _page_request(ctx)
        page = await index.page(ctx.reader.owner, cursor, limit)
        return NamespacePageBody.model_validate(page.to_json())

    return handle


def memory_page_body(page: MemoryPage, now: datetime) -> MemoryPageBody:
    return MemoryPageBody(
        memories=[
            MemoryItemBody(
                memory_id=row.memory_id, namespace_id=row.namespace, blob_id=row.blob_id,
                created_at=_rfc3339(row.created_at), size=row.size, agent_id=row.agent_id, package_id=row.package_id,
                status=row.status(now), end_epoch=row.end_epoch,
                expires_at=None if row.expires_at is None else _rfc3339(row.expires_at), tags=list(row.tags),
            )
            for row in page.memories
        ],
        next_cursor=page.next_cursor,
        has_more=page.has_more,
        snapshot_version=page.snapshot_version,
    )


def memories(index: MemoryIndex) -> OwnerReadHandler:
    async def handle(ctx: OwnerReadContext) -> MemoryPageBody:
        cursor, limit = _page_request(ctx)
        return memory_page_body(await index.page(ctx.reader.owner, cursor, limit), index.clock())

    return handle


def agents(chain: ChainReader) -> OwnerReadHandler:
    """The account's delegate keys as the chain shows them now (a revoked key is gone at once)."""

    async def handle(ctx: OwnerReadContext) -> AgentsBody:
        account = await chain.get_account(ctx.reader.account_id)
        version = await chain.object_version(ctx.reader.account_id)
        if account is None or version is None:
            raise NotFound("account not found on chain")
        return AgentsBody(
            agents=[AgentBody(label=key.label, sui_address=key.sui_address) for key in account.delegate_keys],
            snapshot_version=version,
        )

    return handle


def routes(reads: OwnerReadRoutes, *, namespace_index: NamespaceIndex, memory_index: MemoryIndex,
           chain: ChainReader) -> list[Route]:
    return [
        reads.route("/v1/owners/{owner}/namespaces", namespaces(namespace_index), summary="List the owner's namespaces",
                    response=NamespacePageBody, query=PAGE_QUERY),
        reads.route("/v1/owners/{owner}/memories", memories(memory_index),
                    summary="List the owner's memories (index rows, no content) at one snapshot",
                    response=MemoryPageBody, query=PAGE_QUERY),
        reads.route("/v1/owners/{owner}/agents", agents(chain), summary="The account's delegate keys, read from chain",
                    response=AgentsBody, errors=(404, 502)),
    ]
