"""Seal decryptions (and encryptions) spread over the machine's cores: a pool of the sidecar's own worker processes.

A blob's decryption is a few milliseconds of pairings and group arithmetic in native code that holds the GIL,
so threads run them one after another; worker processes run them side by side. The workers are started
with ``spawn`` (a fresh interpreter: nothing of the sidecar's memory, and an environment the sidecar has
already stripped of its secrets), die with the sidecar (``PR_SET_PDEATHSIG``), and receive only what one
batch needs: the ciphertexts and the user keys for them, over a pipe private to the sidecar. Keys stay
inside the sidecar's processes. An encryption (three pairings, one per key server) goes to a worker too, with
its plaintext and the key servers' public keys: otherwise each remember's pairings hold the sidecar's GIL and
every upload waiting on its event loop waits for them (docs/performance.md).

A worker that dies breaks the whole executor (``BrokenProcessPool``): the pool is rebuilt and the batch run
once more; a second break in a row is an error for that call. ``workers=0`` decrypts on a thread of the
sidecar itself (no pool).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from typing import TypeVar

from sealcrypto import EncryptedObject, KeyServerPublic, SealError, decrypt_objects, encrypt
from sidecar.errors import SidecarError
from sidecar.lifeline import die_with_parent

logger = logging.getLogger("memwal.sidecar.decryption")

KeysByServer = Mapping[bytes, Mapping[bytes, bytes]]  # key-server object id -> full id -> user secret key
ResultT = TypeVar("ResultT")


class DecryptionUnavailable(SidecarError):
    """The worker processes died twice in a row on one batch."""


def _start_worker(parent_pid: int) -> None:
    die_with_parent(parent_pid)


def _ready() -> int:
    return os.getpid()


class DecryptionPool:
    def __init__(self, workers: int) -> None:
        if workers < 0:
            raise ValueError("workers must be >= 0")
        self._workers = workers
        self._executor: ProcessPoolExecutor | None = None

    def __repr__(self) -> str:
        return f"DecryptionPool(workers={self._workers})"

    @property
    def workers(self) -> int:
        return self._workers

    def start(self) -> list[Future[int]]:
        """Start every worker now, without waiting for them: the first recall then finds them ready (or
        nearly), and the sidecar's own start (which the relayer times) does not wait for interpreters."""
        if self._workers == 0:
            return []
        executor = self._current()
        return [executor.submit(_ready) for _ in range(self._workers)]

    def worker_pids(self) -> list[int]:
        """The live workers' process ids (operations and tests)."""
        if self._executor is None:
            return []
        processes = getattr(self._executor, "_processes", None) or {}  # the executor's own {pid: process}
        return sorted(processes)

    async def decrypt(self, objects: Sequence[EncryptedObject], keys: KeysByServer) -> list[bytes | SealError]:
        """Each object's plaintext or its ``SealError``, in order (as ``sealcrypto.decrypt_objects``)."""
        if not objects:
            return []
        if self._workers == 0:
            return await asyncio.to_thread(decrypt_objects, list(objects), keys)
        chunks = _chunks(list(objects), self._workers)
        parts = await self._run([partial(decrypt_objects, chunk, _keys_for(chunk, keys)) for chunk in chunks])
        return [outcome for part in parts for outcome in part]

    async def encrypt(self, *, package_id: bytes, inner_id: bytes, key_servers: Sequence[KeyServerPublic],
                      threshold: int, plaintext: bytes) -> bytes:
        """``sealcrypto.encrypt`` (the BCS EncryptedObject) on a worker, or on a thread without workers."""
        call = partial(encrypt, package_id=package_id, inner_id=inner_id, key_servers=list(key_servers),
                       threshold=threshold, plaintext=plaintext)
        if self._workers == 0:
            return await asyncio.to_thread(call)
        [ciphertext] = await self._run([call])
        return ciphertext

    async def _run(self, calls: Sequence[Callable[[], ResultT]]) -> list[ResultT]:
        """Each call on a worker, side by side; one rebuild of the pool if a worker dies meanwhile."""
        for attempt in (1, 2):
            executor = self._current()
            loop = asyncio.get_running_loop()
            try:
                return list(await asyncio.gather(*(loop.run_in_executor(executor, call) for call in calls)))
            except BrokenProcessPool:
                logger.warning("a Seal worker died (attempt %d): rebuilding the pool", attempt)
                self._discard(executor)
        raise DecryptionUnavailable("decryption workers keep dying")

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def _current(self) -> ProcessPoolExecutor:
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                max_workers=self._workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=(os.getpid(),),
            )
        return self._executor

    def _discard(self, executor: ProcessPoolExecutor) -> None:
        if self._executor is executor:
            self._executor = None
        executor.shutdown(wait=False, cancel_futures=True)


def _chunks(objects: list[EncryptedObject], count: int) -> list[list[EncryptedObject]]:
    """At most ``count`` contiguous, nearly equal chunks (one per worker: one pipe round trip each)."""
    count = min(count, len(objects))
    size, extra = divmod(len(objects), count)
    chunks, start = [], 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        chunks.append(objects[start:end])
        start = end
    return chunks


def _keys_for(chunk: Sequence[EncryptedObject], keys: KeysByServer) -> dict[bytes, dict[bytes, bytes]]:
    """Only the keys this chunk's identities need travel to its worker."""
    wanted = {obj.full_id for obj in chunk}
    return {server: {full_id: usk for full_id, usk in per_id.items() if full_id in wanted} for server, per_id in keys.items()}
