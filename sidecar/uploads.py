"""Upload a ciphertext to Walrus, then tag the Blob with MemWal metadata and hand it to its owner.

Steps: (1) a job already finished or half-done (the upload journal) resumes instead of storing again;
(2) publish, as a deletable blob sent to the job's server wallet; (3) on ``alreadyCertified``, find
where that content's Blob is (with the owner: done; with our wallet: tag it; elsewhere, e.g. the
publisher's own wallet: store anew with ``force``); (4) wait until the read side shows the Blob the
publisher just created, then tag and transfer it in one transaction, paid with a gas coin no other
in-flight transaction uses (``sidecar.gas``) — or, when all of its wallet's coins are in flight, in the next
coin's transaction together with the other jobs waiting for it (``sidecar.transfer_batches``); (5) keep the gas coin's new version from that
transaction's effects, and wait until reads reflect the transaction before returning. Only step (4)'s
signing and execution holds the coin: the waits before and after run while other transactions go on.

Read-after-write: GraphQL and gRPC reads trail execution (``chain.consistency``), so nothing written a
moment ago is read back blindly: our own writes come from effects, others' are waited for.

Idempotency per job: the journal (``memwal:upload:v1:<job id>`` in the sidecar's Redis) records the blob
and object after publishing and after the transfer, so a retry after a crash never stores or pays twice.
Without Redis the journal is off and a retry after a crash may store the content a second time (the
publisher deduplicates only blobs its own wallet keeps).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from chain.address import normalize_address
from chain.consistency import DEFAULT_READ_LAG_POLICY, ReadLagPolicy, wait_for_object, wait_for_transaction
from chain.errors import ChainError, ChainUnavailable, ReadLagTimeout, TransactionRejected
from chain.reader import ChainReader, ExecutedTransaction, ObjectRef
from chain.transactions import BlobTransfer
from memwal_common.cache_errors import CACHE_ERRORS
from memwal_common.stage_timing import DISABLED as STAGES_OFF
from memwal_common.stage_timing import StageTimer
from sidecar._keys import BlobTags, WalletPool
from sidecar.errors import TransferFailed, UpstreamUnavailable
from sidecar.gas import GasCoinPool, GasLease, ReferenceGasPrice
from sidecar.gas_leases import GasLeaseStore
from sidecar.transfer_batches import BATCH_REJECTED, TransferBatcher
from sidecar.walrus import WalrusClient

logger = logging.getLogger("memwal.sidecar.uploads")

JOURNAL_PREFIX = "memwal:upload:v1:"
JOURNAL_TTL_SECONDS = 7 * 24 * 3600  # longer than any job's retry window
MAX_JOURNAL_BYTES = 1024
SPLIT_COIN_BUDGETS = 20  # a split-off gas coin pays for at least this many transactions


@dataclass(frozen=True)
class UploadResult:
    blob_id: str
    object_id: str
    transfer_status: str  # ok


@dataclass(frozen=True)
class JournalEntry:
    blob_id: str
    object_id: str
    transferred: bool


class UploadJournal:
    """Per-job progress in Redis; every failure of Redis degrades to "no journal", never to an error."""

    def __init__(self, redis: object | None) -> None:
        self._redis = redis

    async def read(self, job_id: str | None) -> JournalEntry | None:
        if self._redis is None or not job_id:
            return None
        try:
            raw = await self._redis.get(JOURNAL_PREFIX + job_id)  # type: ignore[attr-defined]
        except CACHE_ERRORS:
            return None
        if raw is None or len(raw) > MAX_JOURNAL_BYTES:
            return None
        try:
            value = json.loads(raw)
            return JournalEntry(str(value["blobId"]), normalize_address(value["objectId"]), bool(value["transferred"]))
        except (ValueError, KeyError, TypeError):
            return None

    async def write(self, job_id: str | None, entry: JournalEntry) -> None:
        if self._redis is None or not job_id:
            return
        value = json.dumps({"blobId": entry.blob_id, "objectId": entry.object_id, "transferred": entry.transferred})
        try:
            await self._redis.set(JOURNAL_PREFIX + job_id, value, ex=JOURNAL_TTL_SECONDS)  # type: ignore[attr-defined]
        except CACHE_ERRORS:
            logger.warning("upload journal write failed; a retry of this job may store its blob again")


class UploadService:
    def __init__(self, *, chain: ChainReader, walrus: WalrusClient, wallets: WalletPool, walrus_package_id: str,
                 gas_budget: int, concurrency: int, journal: UploadJournal | None = None,
                 read_lag: ReadLagPolicy = DEFAULT_READ_LAG_POLICY, transactions_per_wallet: int = 1,
                 batch_max_blobs: int = 1, gas_leases: GasLeaseStore | None = None,
                 gas_lease_wait_seconds: float = 120.0, stage_timer: StageTimer = STAGES_OFF) -> None:
        self._chain = chain
        self._stages = stage_timer
        self._walrus = walrus
        self._wallets = wallets
        self._walrus_package_id = walrus_package_id
        self._gas_budget = gas_budget
        self._journal = journal or UploadJournal(None)
        self._read_lag = read_lag
        self._publishing = asyncio.Semaphore(concurrency)  # Walrus publishes in flight
        # Each in-flight transaction pays with its own gas coin, whose next version comes from effects; with
        # ``gas_leases`` no other instance pays with that coin meanwhile.
        self._gas_coins = GasCoinPool(chain, wallets.addresses, per_wallet=transactions_per_wallet,
                                      split=self._split_gas_coin, leases=gas_leases,
                                      lease_wait_seconds=gas_lease_wait_seconds)
        self._gas_price = ReferenceGasPrice(chain)
        # Jobs that find every coin of their wallet in flight share the next coin's transaction.
        self.batches = (TransferBatcher(self._gas_coins, wallets=len(wallets), max_blobs=batch_max_blobs,
                                        execute=self._execute_batch) if batch_max_blobs > 1 else None)
        self.active = 0

    async def aclose(self) -> None:
        """Hand back the gas leases still being released, so other instances need not wait out their TTL."""
        await self._gas_coins.drain()

    async def upload(self, data: bytes, *, owner: str, namespace: str, package_id: str, epochs: int,
                     job_id: str | None, agent_id: str | None,
                     extra_tags: tuple[tuple[str, str], ...] = ()) -> UploadResult:
        owner = normalize_address(owner)
        index = self._wallets.index_for(job_id)
        wallet = self._wallets.address(index)
        tags = BlobTags(owner, namespace, package_id, agent_id, extra_tags)
        stage = self._stages.stage
        self.active += 1
        try:
            with stage("upload.journal_read", job_id):
                entry = await self._journal.read(job_id)  # (1)
            if entry is not None and entry.transferred:
                return UploadResult(entry.blob_id, entry.object_id, "ok")
            if entry is None:
                # Only the publish takes a slot: it is what sends the ciphertext out. The chain steps after it
                # hold a gas coin for the transaction alone (``sidecar.gas``) and otherwise wait on reads.
                waiting = self._stages.now()
                async with self._publishing:
                    self._stages.since("upload.slot_wait", job_id, waiting)
                    with stage("upload.publish", job_id):
                        entry = await self._publish(data, epochs=epochs, owner=owner, wallet=wallet)  # (2) + (3)
                with stage("upload.journal_write", job_id):
                    await self._journal.write(job_id, entry)
                if entry.transferred:
                    return UploadResult(entry.blob_id, entry.object_id, "ok")
            await self._tag_and_transfer(index, entry, tags, job_id)  # (4) + (5)
            with stage("upload.journal_write", job_id):
                await self._journal.write(job_id, JournalEntry(entry.blob_id, entry.object_id, True))
            return UploadResult(entry.blob_id, entry.object_id, "ok")
        finally:
            self.active -= 1

    async def _publish(self, data: bytes, *, epochs: int, owner: str, wallet: str) -> JournalEntry:
        published = await self._walrus.publish(data, epochs=epochs, send_object_to=wallet)
        if published.object_id is not None:
            return JournalEntry(published.blob_id, normalize_address(published.object_id), False)
        # alreadyCertified: believe the chain, not the publisher's object (it may be the publisher's own)
        located = await self._locate(published.blob_id, owner, wallet)
        if located is not None:
            object_id, holder = located
            return JournalEntry(published.blob_id, object_id, holder == owner)
        forced = await self._walrus.publish(data, epochs=epochs, send_object_to=wallet, force=True)
        if forced.object_id is None:
            raise UpstreamUnavailable("publisher returned no blob object")
        return JournalEntry(forced.blob_id, normalize_address(forced.object_id), False)

    async def _locate(self, blob_id: str, owner: str, wallet: str) -> tuple[str, str] | None:
        """Find the Blob object holding ``blob_id``: with the owner (done) or still with the wallet."""
        try:
            for holder in (owner, wallet):
                for blob in await self._chain.owned_blobs(holder, self._walrus_package_id):
                    if blob.blob_id == blob_id:
                        return blob.object_id, holder
        except ChainError as exc:
            raise UpstreamUnavailable(f"chain unavailable: {exc}") from None
        return None

    async def _tag_and_transfer(self, index: int, entry: JournalEntry, tags: BlobTags, job_id: str | None) -> None:
        stage = self._stages.stage
        try:
            # The publisher created the Blob a moment ago: wait until the read side has it.
            with stage("upload.object_visible", job_id):
                blob = await wait_for_object(self._chain, entry.object_id, self._read_lag)
            executed = await self._execute_tag_and_transfer(index, entry, blob, tags, job_id)
            if executed is None:
                return
            try:  # later reads (restore, the next upload's lookups) must see this transaction
                with stage("upload.transaction_indexed", job_id):
                    await wait_for_transaction(self._chain, executed.digest, self._read_lag)
            except ReadLagTimeout:
                logger.warning("transaction %s executed but reads have not caught up yet", executed.digest)
        except ReadLagTimeout as exc:
            raise UpstreamUnavailable(f"Sui reads lag behind: {exc}") from None
        except ChainUnavailable as exc:
            raise UpstreamUnavailable(f"chain unavailable: {exc}") from None
        except TransactionRejected as exc:
            raise TransferFailed(f"transfer transaction rejected: {exc}") from None
        except ChainError as exc:
            raise TransferFailed(f"transfer failed: {exc}") from None

    async def _split_gas_coin(self, index: int, coin: ObjectRef, count: int) -> ExecutedTransaction:
        """Give wallet ``index`` ``count`` more gas coins, each worth ``SPLIT_COIN_BUDGETS`` gas budgets."""
        tx_bytes, signature = self._wallets.build_gas_split(
            index, amounts=[self._gas_budget * SPLIT_COIN_BUDGETS] * count, gas_coin=coin,
            gas_price=await self._gas_price.get(), gas_budget=self._gas_budget)
        executed = await self._chain.execute_transaction(tx_bytes, [signature])
        self._gas_price.observe(executed.epoch)
        return executed

    async def _execute_tag_and_transfer(self, index: int, entry: JournalEntry, blob: ObjectRef,
                                        tags: BlobTags, job_id: str | None) -> ExecutedTransaction | None:
        """Sign and execute with a gas coin of this wallet's own; ``None`` if an earlier attempt already did."""
        stage = self._stages.stage
        with stage("upload.gas_prepare", job_id):
            await self._gas_coins.prepare(index)
        if self.batches is not None and not self._gas_coins.has_idle(index):
            with stage("upload.batched_transfer", job_id):  # waiting for the coin, then the shared transaction
                outcome = await self.batches.join(index, BlobTransfer(blob, tags))
            if outcome is not BATCH_REJECTED:
                return outcome
        waiting = self._stages.now()
        async with self._gas_coins.lease(index) as gas:
            self._stages.since("upload.gas_wait", job_id, waiting)
            try:
                with stage("upload.transfer", job_id):  # gas price, build, sign, execute
                    return await self._execute_batch(index, [BlobTransfer(blob, tags)], gas)
            except TransactionRejected:
                if await self._locate(entry.blob_id, tags.owner, self._wallets.address(index)) == (entry.object_id, tags.owner):
                    return None  # an earlier attempt's transfer went through; only its record was lost
                raise

    async def _execute_batch(self, index: int, transfers: Sequence[BlobTransfer], gas: GasLease) -> ExecutedTransaction:
        """One transaction tagging and transferring ``transfers``, paid by ``gas`` (settled from its effects)."""
        tx_bytes, signature = self._wallets.build_blob_transfers(
            index,
            walrus_package_id=self._walrus_package_id,
            transfers=transfers,
            gas_coins=[gas.coin],
            gas_price=await self._gas_price.get(),
            gas_budget=self._gas_budget * len(transfers),
        )
        try:
            executed = await self._chain.execute_transaction(tx_bytes, [signature])
        except TransactionRejected:
            self._gas_price.forget()
            raise
        gas.settle(executed)
        self._gas_price.observe(executed.epoch)
        return executed
