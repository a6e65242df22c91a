"""Text embeddings from one of three providers, behind one ``Embedder`` that also caches recall queries.

    EMBEDDING_PROVIDER=local    all-MiniLM-L6-v2 inside this process (relayer/local_embeddings.py): no text
                                leaves the relayer; 384-d vectors zero-padded to the stored 1536
    EMBEDDING_PROVIDER=openai   an OpenAI-compatible API via the ``openai`` package (upstream's behaviour);
                                with no OPENAI_API_KEY, MemWal's exact deterministic mock instead

The mock (memwal.md §6) matches a MemWal relayer bit for bit: SHA-256(text) bytes cycled to 1536 values,
v[i] = ((b/255)·2−1)·(1+sin(0.001·i)), with every step rounded to float32 as upstream's f32 arithmetic does.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import hashlib
import json
import logging
import math
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import openai

from memwal_common.cache_errors import CACHE_ERRORS
from relayer.embedding_models import MOCK_MODEL, ModelDescription
from relayer.errors import UpstreamFailed, UpstreamUnavailable
from relayer.openai_errors import model_error
from relayer.validation import EMBEDDING_DIMENSIONS

if TYPE_CHECKING:
    from relayer.local_embeddings import LocalEmbeddingModel

logger = logging.getLogger("memwal.embeddings")

MAX_BATCH = 64


def _f32(value: float) -> float:
    return struct.unpack("<f", struct.pack("<f", value))[0]


def _libm_sinf() -> Callable[[float], float]:
    """The C library's ``sinf``, which upstream's ``f32::sin`` calls on Linux (glibc, not correctly rounded)."""
    name = ctypes.util.find_library("m")
    if name is None:
        return lambda x: _f32(math.sin(x))  # correctly rounded: differs from glibc in a few near-tie cases
    sinf = ctypes.CDLL(name).sinf
    sinf.argtypes, sinf.restype = [ctypes.c_float], ctypes.c_float
    return sinf


def _mock_wave() -> tuple[float, ...]:
    # Rust: `1.0 + (i as f32 * 0.001).sin()`, every step in f32. An f64 operation on two f32 operands rounded
    # once to f32 equals the f32 operation, so _f32(...) around each step reproduces it exactly.
    sinf, step = _libm_sinf(), _f32(0.001)
    return tuple(_f32(1.0 + _f32(sinf(_f32(i * step)))) for i in range(EMBEDDING_DIMENSIONS))


_MOCK_WAVE = _mock_wave()


def mock_embedding(text: str) -> list[float]:
    # Rust: `((b as f32 / 255.0) * 2.0 - 1.0) * wave[i]` in f32.
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return [
        _f32(_f32(_f32(digest[i % len(digest)] / 255.0) * 2.0 - 1.0) * _MOCK_WAVE[i])
        for i in range(EMBEDDING_DIMENSIONS)
    ]


class EmbeddingProvider(Protocol):
    description: ModelDescription
    cache_scope: str  # what, besides the text, a cached vector depends on (part of the cache key)

    async def embed_many(self, texts: list[str]) -> list[list[float]]:
        """One stored-dimension vector per text, in order."""
        ...


class MockEmbeddings:
    description = MOCK_MODEL

    def __init__(self, *, cache_scope: str) -> None:
        self.cache_scope = cache_scope

    async def embed_many(self, texts: list[str]) -> list[list[float]]:
        return [mock_embedding(text) for text in texts]


class OpenAIEmbeddings:
    def __init__(self, client: openai.AsyncOpenAI, *, model: str, api_base: str) -> None:
        self._client = client
        self._model = model
        self.description = ModelDescription("openai", model, EMBEDDING_DIMENSIONS)
        self.cache_scope = f"{api_base}\x00{model}"  # upstream's key material, so caches stay interchangeable

    async def embed_many(self, texts: list[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), MAX_BATCH):
            batch = texts[start : start + MAX_BATCH]
            try:
                response = await self._client.embeddings.create(model=self._model, input=batch)
            except openai.OpenAIError as exc:
                raise model_error(exc, "embedding") from None
            ordered = sorted(response.data, key=lambda item: item.index)
            if len(ordered) != len(batch):
                raise UpstreamUnavailable(f"embedding answered {len(ordered)} vectors for {len(batch)} texts")
            for item in ordered:
                if len(item.embedding) != EMBEDDING_DIMENSIONS:
                    raise UpstreamFailed(f"embedding model returned {len(item.embedding)} dimensions")
                vectors.append([float(x) for x in item.embedding])
        return vectors


class LocalEmbeddings:
    """The in-process model, run in a worker thread (numpy releases the GIL), one batch at a time."""

    def __init__(self, model: LocalEmbeddingModel) -> None:
        self._model = model
        self._turn = asyncio.Lock()  # one forward pass at a time: concurrent passes only contend for the cores
        self.description = model.description
        self.cache_scope = f"local\x00{model.description.model}"

    async def embed_many(self, texts: list[str]) -> list[list[float]]:
        async with self._turn:
            return await asyncio.to_thread(self._model.embed_padded, texts)


class Embedder:
    def __init__(self, provider: EmbeddingProvider, *, cache=None, cache_ttl_seconds: int = 600) -> None:
        self._provider = provider
        self._cache = cache  # redis.asyncio.Redis or None
        self._cache_ttl = cache_ttl_seconds

    @property
    def description(self) -> ModelDescription:
        return self._provider.description

    async def embed_many(self, texts: list[str]) -> list[list[float]]:
        return await self._provider.embed_many(texts) if texts else []

    async def embed(self, text: str) -> list[float]:
        return (await self.embed_many([text]))[0]

    async def embed_query(self, text: str) -> list[float]:
        """Embed a recall query through the Redis cache (upstream's key scheme)."""
        if self._cache is None:
            return await self.embed(text)
        material = f"{self._provider.cache_scope}\x00{text}".encode()
        key = "memwal:embedding:v1:" + hashlib.sha256(material).hexdigest()
        try:
            cached = await self._cache.get(key)
        except CACHE_ERRORS:  # a cache outage only costs an embedding call
            cached = None
        if cached:
            return json.loads(cached)
        vector = await self.embed(text)
        try:
            await self._cache.set(key, json.dumps(vector), ex=self._cache_ttl)
        except CACHE_ERRORS:
            logger.warning("embedding cache write failed")
        return vector
