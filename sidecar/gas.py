"""Paying for server-wallet transactions: one gas coin per in-flight transaction, the gas price per epoch.

A gas coin is an owned object: two transactions that pay with the same coin at once conflict (the
second names a version the first consumed). So each wallet lends out its coins one per transaction
(``GasCoinPool.lease``), and at most ``per_wallet`` transactions of one wallet are in flight. A coin's
next version comes from the effects of the transaction that used it, never from a read (reads lag,
``chain.consistency``). When a transaction's outcome is unknown (rejected, or the network failed
mid-call) the coin is re-read before its next use, keeping the higher of the known and the read
version: versions only grow, so a lagging read can never move a coin backwards.

A wallet with fewer coins than ``per_wallet`` splits the missing ones off its first coin the first time it
is used (one ``SplitCoins`` transaction paid by that coin, ``split`` below); if the split fails (the coin
cannot cover it), the wallet runs with the coins it has, and says so in the log.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from chain.errors import ChainError, ObjectNotFound
from chain.reader import ChainReader, ExecutedTransaction, ObjectRef
from sidecar.errors import TransferFailed

logger = logging.getLogger("memwal.sidecar.gas")

# (wallet index, the coin that pays and is split, how many new coins) -> the executed split
SplitGasCoin = Callable[[int, ObjectRef, int], Awaitable[ExecutedTransaction]]


@dataclass
class GasLease:
    """One transaction's gas coin; ``settle`` with the coin's new reference from the transaction's effects."""

    coin: ObjectRef
    settled: ObjectRef | None = None

    def unused(self) -> None:
        """The coin paid for nothing: it goes back at the version it was lent at."""
        self.settled = self.coin

    def settle(self, executed: ExecutedTransaction) -> None:
        if executed.gas_object.object_id != self.coin.object_id:
            raise TransferFailed("the transaction's effects name another gas coin")
        self.settled = executed.gas_object


@dataclass
class _WalletCoins:
    # Coins not lent out, each with whether its version is in doubt (re-read before use). Returning a
    # coin is ``put_nowait``: it cannot be lost to a cancellation while the lease's task unwinds.
    idle: asyncio.Queue[tuple[ObjectRef, bool]] = field(default_factory=asyncio.Queue)
    owned: int = 0  # idle + lent out
    split_tried: bool = False
    loading: asyncio.Lock = field(default_factory=asyncio.Lock)


class GasCoinPool:
    """Per server wallet, the gas coins it pays with and which of them are lent to a transaction."""

    def __init__(self, chain: ChainReader, addresses: list[str], *, per_wallet: int,
                 split: SplitGasCoin | None = None) -> None:
        if per_wallet < 1:
            raise ValueError("a wallet needs at least one transaction in flight")
        self._chain = chain
        self._addresses = addresses
        self._per_wallet = per_wallet
        self._split = split
        self._wallets = [_WalletCoins() for _ in addresses]

    async def prepare(self, index: int) -> None:
        """Load wallet ``index``'s coins (splitting more off on first use) unless it has them already."""
        wallet = self._wallets[index]
        if wallet.owned == 0:  # first use, or every coin vanished: nothing is lent out
            async with wallet.loading:
                if wallet.owned == 0:
                    await self._load(index, wallet)

    def has_idle(self, index: int) -> bool:
        """Whether a lease of wallet ``index`` would start now (nothing awaited between this and ``acquire``)."""
        return not self._wallets[index].idle.empty()

    @asynccontextmanager
    async def lease(self, index: int) -> AsyncIterator[GasLease]:
        """A coin only this transaction pays with until the block ends; waits while all are lent out."""
        lease = await self.acquire(index)
        try:
            yield lease
        finally:
            self.release(index, lease)

    async def acquire(self, index: int) -> GasLease:
        """A coin for one transaction; ``release`` it when the transaction is done (or was never sent)."""
        return GasLease(await self._acquire(index))

    def release(self, index: int, lease: GasLease) -> None:
        wallet = self._wallets[index]
        if lease.settled is not None:
            wallet.idle.put_nowait((lease.settled, False))
        else:  # the outcome is unknown (rejected, or the call failed): re-read before the next use
            wallet.idle.put_nowait((lease.coin, True))

    async def _acquire(self, index: int) -> ObjectRef:
        wallet = self._wallets[index]
        while True:
            await self.prepare(index)
            coin, in_doubt = await wallet.idle.get()
            if not in_doubt:
                return coin
            checked = await self._reread(wallet, coin)
            if checked is not None:
                return checked

    async def _reread(self, wallet: _WalletCoins, known: ObjectRef) -> ObjectRef | None:
        try:
            read = await self._chain.object_ref(known.object_id)
        except ObjectNotFound:
            wallet.owned -= 1  # merged or spent elsewhere: forget it
            logger.warning("gas coin %s is gone; the wallet pays with its other coins", known.object_id)
            return None
        except BaseException:
            wallet.idle.put_nowait((known, True))
            raise
        return read if read.version > known.version else known

    async def _load(self, index: int, wallet: _WalletCoins) -> None:
        address = self._addresses[index]
        coins = list((await self._chain.gas_coins(address))[: self._per_wallet])
        if not coins:
            raise TransferFailed(f"server wallet {address} has no gas coins")
        missing = self._per_wallet - len(coins)
        entries = [(coin, False) for coin in coins]
        if missing > 0 and self._split is not None and not wallet.split_tried:
            wallet.split_tried = True
            entries = await self._split_first_coin(index, coins, missing)
        for entry in entries:
            wallet.idle.put_nowait(entry)
        wallet.owned = len(entries)

    async def _split_first_coin(self, index: int, coins: list[ObjectRef], missing: int) -> list[tuple[ObjectRef, bool]]:
        """The wallet's coins after splitting ``missing`` more off the first, each with whether it is in doubt."""
        assert self._split is not None
        payer, others = coins[0], [(coin, False) for coin in coins[1:]]
        try:
            executed = await self._split(index, payer, missing)
        except ChainError as exc:
            logger.warning("server wallet %s could not split %d gas coins off %s (%s); it keeps %d in flight",
                           self._addresses[index], missing, payer.object_id, exc, len(coins))
            return [(payer, True), *others]  # a split that failed in execution still paid gas: re-read it
        created = [(item.reference, False) for item in executed.changed
                   if item.created and item.owner == self._addresses[index]][:missing]
        return [(executed.gas_object, False), *others, *created]


class ReferenceGasPrice:
    """The network's reference gas price, read once per epoch (effects say which epoch a transaction ran in)."""

    def __init__(self, chain: ChainReader) -> None:
        self._chain = chain
        self._price: int | None = None
        self._epoch: int | None = None

    async def get(self) -> int:
        if self._price is None:
            self._price = await self._chain.gas_price()
        return self._price

    def observe(self, epoch: int | None) -> None:
        """A transaction's effects reported ``epoch``: a new epoch may have a new price."""
        if epoch is None:
            return
        if self._epoch is not None and epoch != self._epoch:
            self._price = None
        self._epoch = epoch

    def forget(self) -> None:
        """After a rejected transaction: the price may be why (an epoch change the effects did not show yet)."""
        self._price = None
