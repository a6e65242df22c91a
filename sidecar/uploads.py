"""Upload a ciphertext to Walrus, then tag the Blob with MemWal metadata and hand it to its owner.

Idempotent per job: the wallet is chosen by the job id, Walrus deduplicates identical content, and a
retry after a crash finds the blob where the last attempt left it (still with the wallet → tag and
transfer it; already with the owner → done), so one job never yields two blobs.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from chain.address import normalize_address
from chain.errors import ChainError, ChainUnavailable, TransactionRejected
from chain.reader import ChainReader
from sidecar._keys import BlobTags, WalletPool
from sidecar.errors import TransferFailed, UpstreamUnavailable
from sidecar.walrus import WalrusClient


@dataclass(frozen=True)
class UploadResult:
    blob_id: str
    object_id: str
    transfer_status: str  # ok


class UploadService:
    def __init__(self, *, chain: ChainReader, walrus: WalrusClient, wallets: WalletPool, walrus_package_id: str,
                 gas_budget: int, concurrency: int) -> None:
        self._chain = chain
        self._walrus = walrus
        self._wallets = wallets
        self._walrus_package_id = walrus_package_id
        self._gas_budget = gas_budget
        self._slots = asyncio.Semaphore(concurrency)
        # Gas coins change version with every transaction: one transaction per wallet at a time.
        self._wallet_locks = [asyncio.Lock() for _ in range(len(wallets))]
        self.active = 0

    async def upload(self, data: bytes, *, owner: str, namespace: str, package_id: str, epochs: int,
                     job_id: str | None, agent_id: str | None) -> UploadResult:
        owner = normalize_address(owner)
        index = self._wallets.index_for(job_id)
        wallet = self._wallets.address(index)
        async with self._slots:
            self.active += 1
            try:
                published = await self._walrus.publish(data, epochs=epochs, send_object_to=wallet)
                object_id = published.object_id
                if object_id is None:
                    located = await self._locate(published.blob_id, owner, wallet)
                    if located is not None and located[1] == owner:
                        return UploadResult(published.blob_id, located[0], "ok")
                    if located is None:
                        published = await self._walrus.publish(data, epochs=epochs, send_object_to=wallet, force=True)
                        object_id = published.object_id
                    else:
                        object_id = located[0]
                if object_id is None:
                    raise UpstreamUnavailable("publisher returned no blob object")
                await self._tag_and_transfer(index, object_id, BlobTags(owner, namespace, package_id, agent_id))
                return UploadResult(published.blob_id, object_id, "ok")
            finally:
                self.active -= 1

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

    async def _tag_and_transfer(self, index: int, object_id: str, tags: BlobTags) -> None:
        wallet = self._wallets.address(index)
        async with self._wallet_locks[index]:
            try:
                blob = await self._chain.object_ref(object_id)
                coins = await self._chain.gas_coins(wallet)
                price = await self._chain.gas_price()
                if not coins:
                    raise TransferFailed(f"server wallet {wallet} has no gas coins")
                tx_bytes, signature = self._wallets.build_tag_and_transfer(
                    index,
                    walrus_package_id=self._walrus_package_id,
                    blobs=[blob],
                    tags=tags,
                    gas_coins=coins[:1],
                    gas_price=price,
                    gas_budget=self._gas_budget,
                )
                await self._chain.execute_transaction(tx_bytes, [signature])
            except ChainUnavailable as exc:
                raise UpstreamUnavailable(f"chain unavailable: {exc}") from None
            except TransactionRejected as exc:
                raise TransferFailed(f"transfer transaction rejected: {exc}") from None
            except ChainError as exc:
                raise TransferFailed(f"transfer failed: {exc}") from None
