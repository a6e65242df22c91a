"""The server-wallet transactions of MemWal's sidecar: tag Blobs and hand them over; split gas coins.

For each Blob: ``WAL::blob::insert_or_update_metadata_pair(&mut Blob, key, value)`` for
``memwal_namespace``, ``memwal_owner``, ``memwal_package_id`` (and ``memwal_agent_id`` when given), then
one ``TransferObjects([blobs], owner)`` per owner (several jobs' Blobs may share one transaction). The
``TransactionData`` is built as ``chain.programmable_transaction`` values (encoded by pysui's BCS types) and
signed offline with pysui's keypair; nothing here touches the network.

The gas split (``build_gas_split_transaction``) gives one wallet several gas coins, so several of its
transactions can be in flight: ``SplitCoins(GasCoin, [amount, …])`` then ``TransferObjects(new coins,
sender)``, as the TypeScript SDK's ``tx.splitCoins(tx.gas, …)`` does.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import nacl.signing
from pysui.sui.sui_crypto import keypair_from_keystring

from chain import bcs
from chain.address import ED25519_FLAG, normalize_address, sui_address
from chain.base58 import b58encode
from chain.keys import encode_sui_private_key
from chain.programmable_transaction import (
    Argument,
    GasData,
    OwnedObjectInput,
    ProgrammableTransactionBuilder,
    TransactionData,
)
from chain.reader import ObjectRef

TRANSACTION_INTENT = b"\x00\x00\x00"  # scope TransactionData, version V0, app Sui
TRANSACTION_DIGEST_SALT = b"TransactionData::"
MAX_BLOBS_PER_TRANSACTION = 20  # upstream's set-metadata-batch limit
MAX_GAS_COINS = 16
MAX_SPLIT_COINS = 64
MAX_METADATA_VALUE_BYTES = 1024


@dataclass(frozen=True)
class BlobTags:
    """The metadata pairs MemWal writes on each Blob; restore filters on them."""

    owner: str
    namespace: str
    memwal_package_id: str
    agent_id: str | None = None
    extra: tuple[tuple[str, str], ...] = ()  # further pairs, e.g. a session-chain frame's session and sequence

    def pairs(self) -> list[tuple[str, str]]:
        pairs = [
            ("memwal_namespace", self.namespace or "default"),
            ("memwal_owner", normalize_address(self.owner)),
            ("memwal_package_id", normalize_address(self.memwal_package_id)),
        ]
        if self.agent_id:
            pairs.append(("memwal_agent_id", self.agent_id))
        pairs.extend(self.extra)
        for key, value in pairs:
            if len(value.encode("utf-8")) > MAX_METADATA_VALUE_BYTES:
                raise ValueError(f"metadata value for {key} is too long")
        return pairs


def build_blob_metadata_transaction(
    *,
    seed: bytes,
    walrus_package_id: str,
    blobs: Sequence[ObjectRef],
    tags: BlobTags,
    gas_coins: Sequence[ObjectRef],
    gas_price: int,
    gas_budget: int,
) -> tuple[bytes, str]:
    """Return ``(tx_bytes, signature_b64)`` ready for ``ChainReader.execute_transaction``."""
    return build_blob_transfers_transaction(
        seed=seed, walrus_package_id=walrus_package_id, transfers=[BlobTransfer(blob, tags) for blob in blobs],
        gas_coins=gas_coins, gas_price=gas_price, gas_budget=gas_budget)


@dataclass(frozen=True)
class BlobTransfer:
    """One Blob to tag with its own MemWal metadata and hand to its owner."""

    blob: ObjectRef
    tags: BlobTags


def build_blob_transfers_transaction(
    *,
    seed: bytes,
    walrus_package_id: str,
    transfers: Sequence[BlobTransfer],
    gas_coins: Sequence[ObjectRef],
    gas_price: int,
    gas_budget: int,
) -> tuple[bytes, str]:
    """Several Blobs, each with its own tags, in one transaction: one ``TransferObjects`` per owner.

    With one owner's tags this is byte for byte the transaction ``build_blob_metadata_transaction`` builds."""
    if not 1 <= len(transfers) <= MAX_BLOBS_PER_TRANSACTION:
        raise ValueError(f"between 1 and {MAX_BLOBS_PER_TRANSACTION} blobs per transaction")
    if len({transfer.blob.object_id for transfer in transfers}) != len(transfers):
        raise ValueError("a Blob may appear once per transaction")
    if not 1 <= len(gas_coins) <= MAX_GAS_COINS:
        raise ValueError(f"between 1 and {MAX_GAS_COINS} gas coins")
    if gas_price <= 0 or gas_budget <= 0:
        raise ValueError("gas price and budget must be positive")
    sender = sui_address(bytes(nacl.signing.SigningKey(seed).verify_key))
    builder = ProgrammableTransactionBuilder()
    blob_arguments = [builder.input(OwnedObjectInput(transfer.blob)) for transfer in transfers]
    pairs = [transfer.tags.pairs() for transfer in transfers]
    for key, value in (pair for blob_pairs in pairs for pair in blob_pairs):
        # one input per distinct string, in first-use order, as the TS SDK does
        builder.pure(bcs.string(key))
        builder.pure(bcs.string(value))
    for blob_argument, blob_pairs in zip(blob_arguments, pairs, strict=True):
        for key, value in blob_pairs:
            arguments = [blob_argument, builder.pure(bcs.string(key)), builder.pure(bcs.string(value))]
            builder.move_call(walrus_package_id, "blob", "insert_or_update_metadata_pair", arguments)
    by_owner: dict[str, list[Argument]] = {}
    for blob_argument, transfer in zip(blob_arguments, transfers, strict=True):
        by_owner.setdefault(normalize_address(transfer.tags.owner), []).append(blob_argument)
    for owner, owned in by_owner.items():
        builder.transfer_objects(owned, builder.pure(bcs.address(owner)))
    return _signed(seed, builder, sender, GasData(tuple(gas_coins), sender, gas_price, gas_budget))


def build_gas_split_transaction(*, seed: bytes, amounts: Sequence[int], gas_coin: ObjectRef, gas_price: int,
                                gas_budget: int) -> tuple[bytes, str]:
    """Split coins of ``amounts`` MIST off the gas coin and keep them in the sender's wallet."""
    if not 1 <= len(amounts) <= MAX_SPLIT_COINS:
        raise ValueError(f"between 1 and {MAX_SPLIT_COINS} new coins per split")
    if any(amount <= 0 for amount in amounts) or gas_price <= 0 or gas_budget <= 0:
        raise ValueError("amounts, gas price and budget must be positive")
    sender = sui_address(bytes(nacl.signing.SigningKey(seed).verify_key))
    builder = ProgrammableTransactionBuilder()
    coins = builder.split_coins(Argument.gas_coin(), [builder.pure(bcs.u64(amount)) for amount in amounts])
    builder.transfer_objects(coins, builder.pure(bcs.address(sender)))
    return _signed(seed, builder, sender, GasData((gas_coin,), sender, gas_price, gas_budget))


def _signed(seed: bytes, builder: ProgrammableTransactionBuilder, sender: str, gas: GasData) -> tuple[bytes, str]:
    tx_bytes = TransactionData(builder.finish(), sender, gas).to_bcs()
    keypair = keypair_from_keystring(encode_sui_private_key(seed))
    return tx_bytes, keypair.new_sign_secure(base64.b64encode(tx_bytes).decode("ascii"))


def sign_transaction(seed: bytes, tx_bytes: bytes) -> str:
    """base64(0x00 ‖ Ed25519(BLAKE2b-256(intent ‖ tx bytes)) ‖ public key), Sui's serialized signature."""
    key = nacl.signing.SigningKey(seed)
    digest = hashlib.blake2b(TRANSACTION_INTENT + bytes(tx_bytes), digest_size=32).digest()
    signature = key.sign(digest).signature
    return base64.b64encode(bytes([ED25519_FLAG]) + signature + bytes(key.verify_key)).decode("ascii")


def transaction_digest(tx_bytes: bytes) -> str:
    """The digest a node reports for these ``TransactionData`` bytes (base58)."""
    return b58encode(hashlib.blake2b(TRANSACTION_DIGEST_SALT + bytes(tx_bytes), digest_size=32).digest())
