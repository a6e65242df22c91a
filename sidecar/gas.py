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

Several instances sharing the wallets (``leases``, a ``sidecar.gas_leases.GasLeaseStore`` on the shared Redis):
a coin lent out here is also leased fleet-wide before it pays, and handed back there with its new version
when the transaction ends, so no two instances pay with one coin version at once and each starts from the
newest version any of them saw. A coin whose fleet lease another instance holds goes back to the local queue
and the next is tried; when every coin of the wallet is held elsewhere the lease waits (doubling back-off,
at most ``lease_wait_seconds``, cancellable). So ``per_wallet`` (SERVER_WALLET_MAX_IN_FLIGHT) bounds one
wallet's transactions in flight across the whole fleet, not per instance. Without ``leases`` coins are
coordinated only within this process (one instance per wallet).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from chain.errors import ChainError, ObjectNotFound
from chain.reader import ChainReader, ExecutedTransaction, ObjectRef
from memwal_common.cache_errors import CACHE_ERRORS
from sidecar.errors import TransferFailed, UpstreamUnavailable
from sidecar.gas_leases import GasLeaseStore, TakenCoin

logger = logging.getLogger("memwal.sidecar.gas")

# (wallet index, the coin that pays and is split, how many new coins) -> the executed split
SplitGasCoin = Callable[[int, ObjectRef, int], Awaitable[ExecutedTransaction]]

FIRST_LEASE_RETRY_SECONDS = 0.005  # waiting for another instance's coin: doubled up to the next
LAST_LEASE_RETRY_SECONDS = 0.2


@dataclass
class GasLease:
    """One transaction's gas coin; ``settle`` with the coin's new reference from the transaction's effects."""

    coin: ObjectRef
    settled: ObjectRef | None = None
    token: str | None = None  # the fleet-wide lease's token, when instances share the wallet

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
                 split: SplitGasCoin | None = None, leases: GasLeaseStore | None = None,
                 lease_wait_seconds: float = 120.0) -> None:
        if per_wallet < 1:
            raise ValueError("a wallet needs at least one transaction in flight")
        self._chain = chain
        self._addresses = addresses
        self._per_wallet = per_wallet
        self._split = split
        self._leases = leases
        self._lease_wait_seconds = lease_wait_seconds
        self._wallets = [_WalletCoins() for _ in addresses]
        self._releasing: set[asyncio.Task[None]] = set()  # fleet leases being handed back (held until done)

    async def prepare(self, index: int) -> None:
        """Load wallet ``index``'s coins (splitting more off on first use) unless it has them already."""
        wallet = self._wallets[index]
        if wallet.owned == 0:  # first use, or every coin vanished: nothing is lent out
            async with wallet.loading:
                if wallet.owned == 0:
                    await self._load(index, wallet)

    def has_idle(self, index: int) -> bool:
        """Whether this process has a coin of wallet ``index`` not lent to one of its own transactions (a cheap
        local check: with ``leases``, another instance may still hold that coin, and ``acquire`` then waits)."""
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
        return await self._acquire(index)

    def release(self, index: int, lease: GasLease) -> None:
        # An unknown outcome (rejected, or the call failed) leaves the coin in doubt: re-read before the next use.
        entry = (lease.settled, False) if lease.settled is not None else (lease.coin, True)
        if lease.token is None:
            self._wallets[index].idle.put_nowait(entry)
            return
        # Synchronous like the local hand-back, so a cancelled task still returns its coin: the fleet lease
        # ends in a task of its own, and the coin is lent here again only once that is done.
        task = asyncio.get_running_loop().create_task(self._end_lease(index, lease.coin.object_id, lease.token,
                                                                      lease.settled, entry))
        self._releasing.add(task)
        task.add_done_callback(self._releasing.discard)

    async def drain(self) -> None:
        """Wait until every fleet lease handed back has ended (on shutdown: other instances need not wait out
        the TTL of a coin this one was done with)."""
        while self._releasing:
            await asyncio.gather(*self._releasing, return_exceptions=True)

    async def _end_lease(self, index: int, coin_id: str, token: str, settled: ObjectRef | None,
                         entry: tuple[ObjectRef, bool]) -> None:
        try:
            if await self._end_fleet_lease(index, coin_id, token, settled) is False:
                entry = (entry[0], True)  # another instance may have paid with it meanwhile
        finally:
            self._wallets[index].idle.put_nowait(entry)

    async def _end_fleet_lease(self, index: int, coin_id: str, token: str, settled: ObjectRef | None) -> bool | None:
        """Hand a fleet lease back (with the coin's new version, if known): whether it was still ours, or None
        when Redis could not be asked (the lease then expires after its TTL)."""
        assert self._leases is not None
        try:
            return await self._leases.release(self._addresses[index], coin_id, token, settled)
        except Exception as exc:  # noqa: BLE001 - Redis trouble: the lease expires after its TTL
            logger.warning("gas lease of coin %s not released (%s); it expires after its TTL", coin_id, exc)
            return None

    async def _acquire(self, index: int) -> GasLease:
        wallet = self._wallets[index]
        refused, delay, waited = 0, FIRST_LEASE_RETRY_SECONDS, 0.0
        while True:
            await self.prepare(index)
            coin, in_doubt = await wallet.idle.get()
            token = None
            if self._leases is not None:
                try:
                    taken = await self._take(index, coin.object_id)
                except BaseException:
                    wallet.idle.put_nowait((coin, in_doubt))
                    raise
                if taken is None:  # another instance pays with it now: try the next coin
                    wallet.idle.put_nowait((coin, in_doubt))
                    refused += 1
                    if refused >= max(wallet.owned, 1):  # every coin held elsewhere: back off
                        if waited >= self._lease_wait_seconds:
                            raise UpstreamUnavailable(
                                f"every gas coin of server wallet {self._addresses[index]} is in use elsewhere")
                        await asyncio.sleep(delay)
                        refused, waited, delay = 0, waited + delay, min(delay * 2, LAST_LEASE_RETRY_SECONDS)
                    continue
                token = taken.token
                if taken.known is not None and taken.known.version > coin.version:
                    coin = taken.known  # another instance paid with it since: start from its effects
                in_doubt = in_doubt or taken.in_doubt
            lease = GasLease(coin, token=token)
            if not in_doubt:
                return lease
            checked = await self._reread(index, lease)
            if checked is not None:
                return checked

    async def _reread(self, index: int, lease: GasLease) -> GasLease | None:
        wallet, known = self._wallets[index], lease.coin
        try:
            read = await self._chain.object_ref(known.object_id)
        except ObjectNotFound:
            wallet.owned -= 1  # merged or spent elsewhere: forget it
            logger.warning("gas coin %s is gone; the wallet pays with its other coins", known.object_id)
            if lease.token is not None:  # the lease of a coin that is gone
                await self._end_fleet_lease(index, known.object_id, lease.token, None)
            return None
        except BaseException:
            self.release(index, lease)  # still in doubt
            raise
        lease.coin = read if read.version > known.version else known
        return lease

    async def _take(self, index: int, coin_id: str) -> TakenCoin | None:
        """The fleet lease of a coin; without Redis no coin may pay (two instances could sign over it at once)."""
        assert self._leases is not None
        try:
            return await self._leases.take(self._addresses[index], coin_id)
        except CACHE_ERRORS as exc:
            raise UpstreamUnavailable(f"gas leases unavailable (Redis): {exc}") from None

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
        lease, in_doubt = GasLease(payer), False
        if self._leases is not None:  # the split pays with the coin: it needs the fleet lease like any payment
            taken = await self._take(index, payer.object_id)
            if taken is None:  # another instance pays with it (and may be splitting): keep what the wallet has
                return [(payer, False), *others]
            lease.token = taken.token
            if taken.known is not None and taken.known.version > payer.version:
                lease.coin = taken.known
            in_doubt = taken.in_doubt
        try:
            if in_doubt:
                read = await self._chain.object_ref(lease.coin.object_id)
                lease.coin = read if read.version > lease.coin.version else lease.coin
            executed = await self._split(index, lease.coin, missing)
        except ChainError as exc:
            logger.warning("server wallet %s could not split %d gas coins off %s (%s); it keeps %d in flight",
                           self._addresses[index], missing, payer.object_id, exc, len(coins))
            await self._end_split_lease(index, lease)
            return [(lease.coin, True), *others]  # a split that failed in execution still paid gas: re-read it
        except BaseException:
            await self._end_split_lease(index, lease)
            raise
        lease.settled = executed.gas_object
        await self._end_split_lease(index, lease)
        created = [(item.reference, False) for item in executed.changed
                   if item.created and item.owner == self._addresses[index]][:missing]
        return [(executed.gas_object, False), *others, *created]

    async def _end_split_lease(self, index: int, lease: GasLease) -> None:
        if self._leases is not None and lease.token is not None:
            await self._end_fleet_lease(index, lease.coin.object_id, lease.token, lease.settled)


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
