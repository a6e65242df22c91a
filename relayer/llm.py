"""LLM calls: fact extraction for analyze (extract.v6), answers for ask (ask.v1), summaries for long texts.

Prompts live in ``relayer/prompts/``; parsing follows memwal.md §6: the model answers ``NONE`` or lines
``BUCKET<TAB>fact`` with buckets vital (0.9), standard (0.5), trivial (0.2); at most 20 facts.
"""

from __future__ import annotations

import asyncio
import html
from dataclasses import dataclass
from importlib import resources

import openai
from openai.types.chat import ChatCompletionMessageParam

from relayer.egress_policy import PlaintextPolicy
from relayer.errors import EgressPolicyRefusal, FeatureUnavailable, UpstreamUnavailable
from relayer.openai_errors import model_error

PROMPT_VERSIONS = {"extract": "extract.v6", "ask": "ask.v1"}
BUCKET_IMPORTANCE = {"vital": 0.9, "standard": 0.5, "trivial": 0.2}
MAX_FACTS = 20
MAX_FACT_BYTES = 8 * 1024
RELATED_MEMORY_BYTES = 400
SUMMARIZE_ABOVE_BYTES = 8 * 1024
SUMMARY_CHUNK_BYTES = 64 * 1024
MAX_SUMMARY_CHUNKS = 16


def _prompt(name: str) -> str:
    return resources.files("relayer.prompts").joinpath(name).read_text(encoding="utf-8")


@dataclass(frozen=True)
class Fact:
    text: str
    importance: float


@dataclass(frozen=True)
class Memory:
    blob_id: str
    text: str
    distance: float


def parse_facts(output: str) -> list[Fact]:
    if output.strip().upper() == "NONE":
        return []
    facts: list[Fact] = []
    for line in output.splitlines():
        line = line.strip()
        if not line or line.upper() == "NONE":
            continue
        bucket, separator, text = line.partition("\t")
        if separator:
            importance = BUCKET_IMPORTANCE.get(bucket.strip().lower(), 0.5)
        else:
            importance, text = 0.5, line
        text = text.strip()
        if text and len(text.encode("utf-8")) <= MAX_FACT_BYTES:
            facts.append(Fact(text, importance))
        if len(facts) == MAX_FACTS:
            break
    return facts


def _truncate(text: str, limit: int) -> str:
    encoded = text.encode("utf-8")
    if len(encoded) <= limit:
        return text
    return encoded[:limit].decode("utf-8", errors="ignore") + "…"


class LanguageModel:
    """The chat model behind analyze, ask and long-text summaries; ``policy`` decides whether text may reach it."""

    def __init__(self, client: openai.AsyncOpenAI | None, model: str, *, policy: PlaintextPolicy) -> None:
        self._client = client
        self._model = model
        self._policy = policy

    @property
    def available(self) -> bool:
        return self._client is not None and self._policy.llm_allowed

    @property
    def status(self) -> str:
        """For /config: available | not-configured | refused-by-egress-policy."""
        if not self._policy.llm_allowed:
            return "refused-by-egress-policy"
        return "available" if self._client is not None else "not-configured"

    def require(self, feature: str) -> None:
        """Raise the client-facing reason ``feature`` cannot use the LLM: the egress policy (403), or none set (501)."""
        refusal = self._policy.llm_refusal(feature)
        if refusal is not None:
            raise EgressPolicyRefusal(refusal)
        if self._client is None:
            raise FeatureUnavailable(f"{feature} needs an LLM: set OPENAI_API_KEY")

    async def _complete(self, messages: list[ChatCompletionMessageParam], *, temperature: float, max_tokens: int) -> str | None:
        self.require("this call")
        assert self._client is not None
        try:
            response = await self._client.chat.completions.create(
                model=self._model, messages=messages, temperature=temperature, max_tokens=max_tokens
            )
        except openai.OpenAIError as exc:
            raise model_error(exc, "chat completion") from None
        if not response.choices:
            return None
        return response.choices[0].message.content

    async def extract_facts(self, text: str, *, related: list[str], occurred_at: str | None) -> list[Fact]:
        messages: list[ChatCompletionMessageParam] = [{"role": "system", "content": _prompt("extract.txt")}]
        if related:
            numbered = "\n".join(
                f"{index}. {html.escape(_truncate(memory, RELATED_MEMORY_BYTES), quote=False)}"
                for index, memory in enumerate(related, start=1)
            )
            messages.append({"role": "user", "content": f"<related_memories>\n{numbered}\n</related_memories>"})
        if occurred_at:
            messages.append({"role": "user", "content": f'<context occurred_at="{html.escape(occurred_at)}"/>'})
        messages.append({"role": "user", "content": text})
        output = await self._complete(messages, temperature=0.1, max_tokens=512)
        if output is None:
            raise UpstreamUnavailable("fact extraction answered no content")
        return parse_facts(output)

    async def answer(self, question: str, memories: list[Memory]) -> str:
        if memories:
            facts = "\n".join(
                f'<memory id="{html.escape(m.blob_id)}" relevance="{1 - m.distance:.2f}">{html.escape(m.text, quote=False)}</memory>'
                for m in memories
            )
            context = f"Known facts about this user:\n{facts}"
        else:
            context = "No memories found for this user yet."
        messages: list[ChatCompletionMessageParam] = [
            {"role": "system", "content": f"{_prompt('ask.txt')}\n\n{context}"},
            {"role": "user", "content": question},
        ]
        output = await self._complete(messages, temperature=0.7, max_tokens=512)
        return output.strip() if output and output.strip() else "No response from LLM"

    async def summarize_for_embedding(self, text: str) -> str:
        """Shorten long texts before embedding (the full text is still what gets encrypted)."""
        if not self.available or len(text.encode("utf-8")) <= SUMMARIZE_ABOVE_BYTES:
            return text
        encoded = text.encode("utf-8")
        chunks = [
            encoded[i : i + SUMMARY_CHUNK_BYTES].decode("utf-8", errors="ignore")
            for i in range(0, len(encoded), SUMMARY_CHUNK_BYTES)
        ][:MAX_SUMMARY_CHUNKS]
        instruction = "Summarize the text for semantic search. Keep names, facts, dates and preferences."
        semaphore = asyncio.Semaphore(4)

        async def summarize(chunk: str, tokens: int) -> str:
            async with semaphore:
                messages: list[ChatCompletionMessageParam] = [
                    {"role": "system", "content": instruction},
                    {"role": "user", "content": chunk},
                ]
                return (await self._complete(messages, temperature=0.1, max_tokens=tokens)) or ""

        if len(chunks) == 1:
            return (await summarize(chunks[0], 800)) or text[:SUMMARIZE_ABOVE_BYTES]
        partials = await asyncio.gather(*(summarize(chunk, 220) for chunk in chunks))
        return (await summarize("\n".join(partials), 800)) or "\n".join(partials)
