"""Walrus over HTTP: publisher uploads and aggregator reads raced across several URLs, with a Redis cache.

Reads start on the first aggregator and add the next one every ``race_after_ms`` until one answers
200; a blob is "not found" only when every aggregator said 404, and again after retrying with back-off
for ``not_found_retry_seconds`` (upstream deletes index rows on a 404, and aggregators answer 404 for a
while right after certification, before their storage nodes have the blob). Ciphertexts up to
``cache_max_bytes`` are cached under ``memwal:blob:v1:<id>``; they are Seal ciphertexts, so the cache
holds nothing readable.

Publishing asks for a deletable blob sent to the server wallet. The publisher answers ``newlyCreated``
(the new Blob's id) or ``alreadyCertified`` with an ``event`` (a permanent blob) or an ``object`` (a
deletable Blob the *publisher's own* wallet owns, which our wallet cannot tag or transfer); the upload
service decides what either means for the caller.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx

from memwal_common.cache_errors import CACHE_ERRORS
from sidecar.errors import BadInput, UpstreamUnavailable

logger = logging.getLogger("memwal.sidecar.walrus")

CACHE_PREFIX = "memwal:blob:v1:"
MAX_PUBLISHER_RESPONSE_BYTES = 256 * 1024
NOT_FOUND_FIRST_RETRY_SECONDS = 0.25
NOT_FOUND_MAX_RETRY_DELAY_SECONDS = 1.0


@dataclass(frozen=True)
class Published:
    blob_id: str
    object_id: str | None  # the Blob created for this upload (newlyCreated); None when already certified
    already_certified: bool
    certified_object_id: str | None = None  # alreadyCertified.object: a deletable Blob the publisher's wallet owns


@dataclass(frozen=True)
class BlobFetch:
    status: str  # ok | not_found | error
    data: bytes | None = None


class WalrusClient:
    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        publisher_url: str,
        aggregator_urls: tuple[str, ...],
        race_after_ms: int,
        timeout_seconds: float,
        max_blob_bytes: int,
        cache=None,
        cache_ttl_seconds: int = 0,
        cache_max_bytes: int = 0,
        not_found_retry_seconds: float = 0.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = http
        self._publisher = publisher_url
        self._aggregators = aggregator_urls
        self._race_after = race_after_ms / 1000.0
        self._timeout = timeout_seconds
        self._max_blob = max_blob_bytes
        self._cache = cache
        self._cache_ttl = cache_ttl_seconds
        self._cache_max = cache_max_bytes
        self._not_found_retry = not_found_retry_seconds
        self._sleep = sleep
        self._clock = clock

    async def publish(self, data: bytes, *, epochs: int, send_object_to: str, force: bool = False) -> Published:
        if len(data) > self._max_blob:
            raise BadInput(f"blob of {len(data)} bytes exceeds {self._max_blob}")
        params = {"epochs": str(epochs), "send_object_to": send_object_to, "deletable": "true"}
        if force:
            params["force"] = "true"
        try:
            response = await self._http.put(
                f"{self._publisher}/v1/blobs", params=params, content=data, timeout=self._timeout * 4
            )
        except httpx.HTTPError as exc:
            raise UpstreamUnavailable(f"publisher unreachable: {type(exc).__name__}") from None
        if response.status_code == 413:
            raise BadInput("publisher rejected the blob as too large")
        if response.status_code != 200 or len(response.content) > MAX_PUBLISHER_RESPONSE_BYTES:
            raise UpstreamUnavailable(f"publisher answered {response.status_code}")
        try:
            body = response.json()
            if "newlyCreated" in body:
                blob = body["newlyCreated"]["blobObject"]
                published = Published(str(blob["blobId"]), str(blob["id"]), False)
            elif "alreadyCertified" in body:
                certified = body["alreadyCertified"]
                existing = certified.get("object")
                published = Published(str(certified["blobId"]), None, True, None if existing is None else str(existing))
            else:
                raise UpstreamUnavailable(f"publisher could not store the blob: {sorted(body)}")
        except (KeyError, TypeError, ValueError) as exc:
            raise UpstreamUnavailable(f"publisher answered in an unexpected shape: {type(exc).__name__}") from None
        await self._cache_put(published.blob_id, data)
        return published

    async def read(self, blob_id: str) -> BlobFetch:
        cached = await self._cache_get(blob_id)
        if cached is not None:
            return BlobFetch("ok", cached)
        fetch = await self._race_until_found(blob_id)
        if fetch.status == "ok" and fetch.data is not None:
            await self._cache_put(blob_id, fetch.data)
        return fetch

    async def _race_until_found(self, blob_id: str) -> BlobFetch:
        """Race the aggregators; on "not found" everywhere, try again with back-off before believing it."""
        deadline = self._clock() + self._not_found_retry
        delay = NOT_FOUND_FIRST_RETRY_SECONDS
        fetch = await self._race(blob_id)
        while fetch.status == "not_found" and (remaining := deadline - self._clock()) > 0:
            await self._sleep(min(delay, remaining))
            delay = min(delay * 2, NOT_FOUND_MAX_RETRY_DELAY_SECONDS)
            fetch = await self._race(blob_id)
        return fetch

    async def read_many(self, blob_ids: list[str], concurrency: int = 10) -> dict[str, BlobFetch]:
        semaphore = asyncio.Semaphore(concurrency)

        async def one(blob_id: str) -> tuple[str, BlobFetch]:
            async with semaphore:
                return blob_id, await self.read(blob_id)

        return dict(await asyncio.gather(*(one(blob_id) for blob_id in dict.fromkeys(blob_ids))))

    async def _race(self, blob_id: str) -> BlobFetch:
        pending: set[asyncio.Task[str | bytes]] = set()
        outcomes: list[str] = []
        launched = 0
        try:
            while True:
                # Start the next aggregator when the race timer fires or every read so far failed.
                if launched < len(self._aggregators):
                    pending.add(asyncio.create_task(self._get(self._aggregators[launched], blob_id)))
                    launched += 1
                if not pending:
                    break
                timeout = self._race_after if launched < len(self._aggregators) else None
                done, pending = await asyncio.wait(pending, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    result = task.result()
                    if isinstance(result, bytes):
                        return BlobFetch("ok", result)
                    outcomes.append(result)
                if done and pending and launched < len(self._aggregators):
                    continue  # a failure: race the next one at once
                if not pending and launched >= len(self._aggregators):
                    break
        finally:
            for task in pending:
                task.cancel()
        if len(outcomes) == len(self._aggregators) and all(outcome == "not_found" for outcome in outcomes):
            return BlobFetch("not_found")
        return BlobFetch("error")

    async def _get(self, base: str, blob_id: str) -> str | bytes:
        try:
            async with self._http.stream("GET", f"{base}/v1/blobs/{blob_id}", timeout=self._timeout) as response:
                if response.status_code == 404:
                    return "not_found"
                if response.status_code != 200:
                    return "error"
                chunks, size = [], 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > self._max_blob:
                        return "error"
                    chunks.append(chunk)
                return b"".join(chunks)
        except httpx.HTTPError:
            return "error"

    async def _cache_get(self, blob_id: str) -> bytes | None:
        if self._cache is None:
            return None
        try:
            return await self._cache.get(CACHE_PREFIX + blob_id)
        except CACHE_ERRORS:  # a cache outage only costs a download
            return None

    async def _cache_put(self, blob_id: str, data: bytes) -> None:
        if self._cache is None or len(data) > self._cache_max or self._cache_ttl <= 0:
            return
        try:
            await self._cache.set(CACHE_PREFIX + blob_id, data, ex=self._cache_ttl)
        except CACHE_ERRORS:
            logger.warning("blob cache write failed")
