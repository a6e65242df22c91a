"""Group commit for tag-and-transfer: while every gas coin of a wallet is in flight, the jobs that queue up
for one go out together, as one programmable transaction, when a coin comes back.

A wallet with an idle coin never waits here (``UploadService`` sends such a job alone at once), so batching
costs nothing when the chain keeps up and saves a signature, an execution and a read-after-write wait per job
when it does not. One collector task per wallet exists only while jobs are queued: it takes a coin, takes up to
``max_blobs`` queued jobs in arrival order, and starts their transaction; the coin goes back when that
transaction's outcome is known. A batch the network rejects is not retried as a batch: each of its jobs is
told ``BATCH_REJECTED`` and sends its transfer alone, where an earlier attempt that went through is
recognised (``UploadService``). Any other failure reaches every job of the batch, as it would reach one job.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import Enum

from chain.errors import TransactionRejected
from chain.reader import ExecutedTransaction
from chain.transactions import MAX_BLOBS_PER_TRANSACTION, BlobTransfer
from sidecar.gas import GasCoinPool, GasLease

logger = logging.getLogger("memwal.sidecar.transfer_batches")


class BatchOutcome(Enum):
    REJECTED = "rejected"  # the batch's transaction was refused: send this job's transfer alone


BATCH_REJECTED = BatchOutcome.REJECTED

# (wallet index, the batch, its gas lease) -> the executed transaction; settles the lease from its effects
ExecuteBatch = Callable[[int, Sequence[BlobTransfer], GasLease], Awaitable[ExecutedTransaction]]


@dataclass(frozen=True)
class _Queued:
    transfer: BlobTransfer
    outcome: asyncio.Future[ExecutedTransaction | BatchOutcome]


class TransferBatcher:
    def __init__(self, coins: GasCoinPool, *, wallets: int, max_blobs: int, execute: ExecuteBatch) -> None:
        if not 1 <= max_blobs <= MAX_BLOBS_PER_TRANSACTION:
            raise ValueError(f"a batch holds between 1 and {MAX_BLOBS_PER_TRANSACTION} blobs")
        self._coins = coins
        self._max_blobs = max_blobs
        self._execute = execute
        self._queues: list[list[_Queued]] = [[] for _ in range(wallets)]
        self._collectors: list[asyncio.Task[None] | None] = [None] * wallets
        self._running: set[asyncio.Task[None]] = set()  # batches in flight (held so they are not collected)
        self.batched_transactions = 0  # transactions that carried more than one job (for tests and logs)

    def queued(self, index: int) -> int:
        """Jobs of wallet ``index`` waiting for a coin now."""
        return len(self._queues[index])

    async def join(self, index: int, transfer: BlobTransfer) -> ExecutedTransaction | BatchOutcome:
        """Wait for the next coin of wallet ``index`` and go out with whoever else waits for it."""
        loop = asyncio.get_running_loop()
        queued = _Queued(transfer, loop.create_future())
        queue = self._queues[index]
        queue.append(queued)
        if self._collectors[index] is None:
            self._collectors[index] = loop.create_task(self._collect(index))
        try:
            return await queued.outcome  # cancelling the caller cancels the future: a batch then skips it
        finally:
            if queued in queue:
                queue.remove(queued)

    async def _collect(self, index: int) -> None:
        queue = self._queues[index]
        try:
            while queue:
                lease = await self._coins.acquire(index)
                batch = [queued for queued in queue[: self._max_blobs] if not queued.outcome.done()]
                del queue[: self._max_blobs]
                if not batch:
                    lease.unused()
                    self._coins.release(index, lease)
                    continue
                task = asyncio.get_running_loop().create_task(self._run(index, lease, batch))
                self._running.add(task)
                task.add_done_callback(self._running.discard)
        except Exception as exc:  # noqa: BLE001 - no coin could be had: every queued job raises it, none waits forever
            for queued in queue:
                _settle(queued, exception=exc)
            queue.clear()
        finally:
            self._collectors[index] = None

    async def _run(self, index: int, lease: GasLease, batch: list[_Queued]) -> None:
        try:
            executed = await self._execute(index, [queued.transfer for queued in batch], lease)
        except TransactionRejected as exc:
            logger.info("a transaction of %d transfers was rejected (%s); each is sent alone", len(batch), exc)
            for queued in batch:
                _settle(queued, result=BATCH_REJECTED)
        except Exception as exc:  # noqa: BLE001 - each job of the batch raises it, as it would alone
            for queued in batch:
                _settle(queued, exception=exc)
        else:
            if len(batch) > 1:
                self.batched_transactions += 1
            for queued in batch:
                _settle(queued, result=executed)
        finally:
            self._coins.release(index, lease)


def _settle(queued: _Queued, *, result: ExecutedTransaction | BatchOutcome | None = None,
            exception: BaseException | None = None) -> None:
    if queued.outcome.done():  # its job was cancelled while the transaction ran
        return
    if exception is not None:
        queued.outcome.set_exception(exception)
    else:
        assert result is not None
        queued.outcome.set_result(result)
