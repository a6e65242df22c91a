"""Executing a signed transaction against the localnet ``World``.

Steps, in the order a validator takes them:
(1) decode the ``TransactionData``; (2) verify the sender's Ed25519 signature over
BLAKE2b-256(intent ``00 00 00`` ‖ bytes); (3) check the gas coins and every owned input: they exist,
the sender owns them, and version and digest match; (4) run the commands;
(5) write all changed objects at one new version and record the transaction. Any failure raises
``TransactionError`` and leaves the world unchanged.

Commands: ``walrus::blob::insert_or_update_metadata_pair`` on a Blob, ``TransferObjects``, and
``SplitCoins`` of a ``Coin<SUI>`` (the gas coin keeps its budget back, as on Sui); a split-off coin that
is never transferred fails the transaction (``UnusedValueWithoutDrop``: coins cannot be dropped).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable
from typing import TypeVar

import nacl.exceptions
import nacl.signing

from chain.address import sui_address
from chain.bcs import BcsError, BcsReader
from chain.errors import MalformedTransaction
from chain.programmable_transaction import (
    Argument,
    ArgumentKind,
    Input,
    MoveCall,
    PureInput,
    ReceivingInput,
    SharedObjectInput,
    SplitCoins,
    TransactionData,
    TransferObjects,
)
from chain.reader import ObjectRef
from chain.transactions import TRANSACTION_INTENT, transaction_digest
from localnet import move
from localnet.move_values import U64
from localnet.object_store import MoveAbort, ObjectStore, StoredObject, StoredTransaction, TransactionBuilder

_Value = TypeVar("_Value")
GAS_UNITS_CHARGED = 1000  # a flat computation charge; the localnet does not meter
MAX_SIGNATURES = 2


class TransactionError(Exception):
    """A transaction was refused; ``kind`` names the reason the way Sui's errors do."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind


def apply_transaction(world: ObjectStore, tx_bytes: bytes, signatures: list[str]) -> StoredTransaction:
    try:
        data = TransactionData.from_bcs(tx_bytes)  # (1)
    except MalformedTransaction as exc:
        raise TransactionError("InvalidTransaction", str(exc)) from exc
    _check_supported(data)
    _verify_signatures(data, tx_bytes, signatures)  # (2)
    digest = transaction_digest(tx_bytes)
    with world.lock:
        position = world.transaction_positions.get(digest)
        if position is not None:
            return world.transactions[position]  # executing the same bytes again is idempotent on Sui
        gas_coins = [_checked_owned(world, data.sender, reference, "gas coin") for reference in data.gas.payment]  # (3)
        if any(coin.type != move.SUI_COIN_TYPE for coin in gas_coins) or not gas_coins:
            raise TransactionError("InvalidGasObject", "gas must be paid with Coin<SUI> objects")
        if data.gas.price < world.reference_gas_price:
            raise TransactionError("GasPriceUnderReferencePrice", f"gas price {data.gas.price} < {world.reference_gas_price}")
        if sum(coin.struct.number("balance") for coin in gas_coins) < data.gas.budget:
            raise TransactionError("InsufficientGas", "gas coins do not cover the budget")
        inputs = [_checked_input(world, data.sender, item) for item in data.transaction.inputs]
        values = _Values(inputs, gas_coins[0].object_id)
        try:
            with world.transaction(data.sender, digest=digest, gas_object=gas_coins[0].object_id) as tx:  # (4) + (5)
                for command in data.transaction.commands:
                    if isinstance(command, MoveCall):
                        _move_call(world, tx, data, values, command)
                    elif isinstance(command, SplitCoins):
                        _split_coins(world, tx, data, values, command)
                    else:
                        _transfer(world, tx, data, values, command)
                    values.results.append(values.pending_results)
                    values.pending_results = []
                if values.unspent:
                    raise TransactionError("UnusedValueWithoutDrop", "split-off coins must be transferred")
                charge = min(data.gas.budget, data.gas.price * GAS_UNITS_CHARGED)
                first = world.objects[gas_coins[0].object_id]
                tx.update(first, fields={"balance": U64(first.struct.number("balance") - charge)})
                for coin in gas_coins[1:]:
                    tx.update(world.objects[coin.object_id])
                recorded_digest = tx.digest
        except MoveAbort as exc:
            raise TransactionError("MoveAbort", str(exc)) from exc
        return next(done for done in reversed(world.transactions) if done.digest == recorded_digest)


def _check_supported(data: TransactionData) -> None:
    """What the localnet cannot execute is refused up front, as a transaction it does not accept."""
    if data.gas.owner != data.sender:
        raise TransactionError("InvalidTransaction", "sponsored transactions are not supported")
    if any(isinstance(item, ReceivingInput) for item in data.transaction.inputs):
        raise TransactionError("InvalidTransaction", "receiving objects are not supported")
    if any(isinstance(command, MoveCall) and command.type_arguments for command in data.transaction.commands):
        raise TransactionError("InvalidTransaction", "type arguments are not supported")


def _verify_signatures(data: TransactionData, tx_bytes: bytes, signatures: list[str]) -> None:
    if not 1 <= len(signatures) <= MAX_SIGNATURES:
        raise TransactionError("InvalidSignature", "expected the sender's signature")
    message = hashlib.blake2b(TRANSACTION_INTENT + tx_bytes, digest_size=32).digest()
    for signature_b64 in signatures:
        try:
            raw = base64.b64decode(signature_b64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise TransactionError("InvalidSignature", "signature is not base64") from exc
        if len(raw) != 97 or raw[0] != 0:
            raise TransactionError("InvalidSignature", "only Ed25519 signatures are supported")
        public_key = raw[65:]
        if sui_address(public_key) != data.sender:
            continue
        try:
            nacl.signing.VerifyKey(public_key).verify(message, raw[1:65])
        except nacl.exceptions.BadSignatureError as exc:
            raise TransactionError("InvalidSignature", "signature does not verify") from exc
        return
    raise TransactionError("InvalidSignature", "no signature from the sender")


def _checked_owned(world: ObjectStore, sender: str, reference: ObjectRef, what: str) -> StoredObject:
    item = world.get(reference.object_id)
    if item is None:
        raise TransactionError("ObjectNotFound", f"{what} {reference.object_id} does not exist")
    if item.owner != "Immutable" and item.owner_address() != sender:
        raise TransactionError("IncorrectUserSignature", f"{what} {reference.object_id} is not owned by the sender")
    if item.version != reference.version or item.digest != reference.digest:
        raise TransactionError(
            "ObjectVersionUnavailableForConsumption",
            f"{what} {reference.object_id} is at version {item.version}, not {reference.version}",
        )
    return item


def _checked_input(world: ObjectStore, sender: str, item: Input) -> object:
    if isinstance(item, PureInput):
        return item
    if not isinstance(item, SharedObjectInput):  # receiving inputs were refused by _check_supported
        return _checked_owned(world, sender, item.reference, "input object")
    stored = world.get(item.object_id)
    shared = stored.owner.get("Shared") if stored is not None and isinstance(stored.owner, dict) else None
    if shared is None or shared["initial_shared_version"] != item.initial_shared_version:
        raise TransactionError("InvalidSharedObject", f"{item.object_id} is not shared at that version")
    return stored


class _Values:
    """What a command's arguments can name: inputs, the gas coin, and earlier commands' results (object ids)."""

    def __init__(self, inputs: list[object], gas_coin_id: str) -> None:
        self.inputs = inputs
        self.gas_coin_id = gas_coin_id
        self.results: list[list[str]] = []
        self.pending_results: list[str] = []  # the running command's
        self.unspent: set[str] = set()  # split-off coins not yet transferred


def _object_argument(world: ObjectStore, values: _Values, argument: Argument) -> StoredObject:
    object_id: str | None = None
    if argument.kind is ArgumentKind.GAS_COIN:
        object_id = values.gas_coin_id
    elif argument.kind is ArgumentKind.INPUT and argument.index < len(values.inputs):
        item = values.inputs[argument.index]
        object_id = item.object_id if isinstance(item, StoredObject) else None
    elif argument.kind is ArgumentKind.NESTED_RESULT and argument.index < len(values.results):
        result = values.results[argument.index]
        object_id = result[argument.nested_index] if argument.nested_index < len(result) else None
    elif argument.kind is ArgumentKind.RESULT and argument.index < len(values.results):
        result = values.results[argument.index]
        object_id = result[0] if len(result) == 1 else None
    if object_id is None:
        raise TransactionError("MoveAbort", "expected an object argument")
    return world.objects[object_id]  # latest state within this transaction


def _pure_argument(inputs: list[object], argument: Argument, decode: Callable[[BcsReader], _Value]) -> _Value:
    item = inputs[argument.index] if argument.kind is ArgumentKind.INPUT and argument.index < len(inputs) else None
    if not isinstance(item, PureInput):
        raise TransactionError("MoveAbort", "expected a pure input argument")
    reader = BcsReader(item.value)
    try:
        value = decode(reader)
        reader.finish()
    except BcsError as exc:
        raise TransactionError("MoveAbort", f"pure argument does not decode: {exc}") from exc
    return value


def _move_call(world: ObjectStore, tx: TransactionBuilder, data: TransactionData, values: _Values, call: MoveCall) -> None:
    walrus = world.packages.get("walrus")
    target = f"{call.package}::{call.module}::{call.function}"
    if walrus is None or target != f"{walrus}::blob::insert_or_update_metadata_pair" or len(call.arguments) != 3:
        raise TransactionError("MoveAbort", f"function {target} is not available on the localnet")
    blob = _object_argument(world, values, call.arguments[0])
    if blob.type != f"{walrus}::blob::Blob" or blob.owner_address() != data.sender:
        raise TransactionError("MoveAbort", "insert_or_update_metadata_pair needs a Blob the sender owns")
    key = _pure_argument(values.inputs, call.arguments[1], lambda reader: reader.string(1024))
    value = _pure_argument(values.inputs, call.arguments[2], lambda reader: reader.string(64 * 1024))
    move.insert_or_update_metadata_pair(world, tx, blob.object_id, key, value)


def _transfer(world: ObjectStore, tx: TransactionBuilder, data: TransactionData, values: _Values,
              command: TransferObjects) -> None:
    recipient = _pure_argument(values.inputs, command.recipient, lambda reader: reader.address())
    for argument in command.objects:
        if argument.kind is ArgumentKind.GAS_COIN:
            raise TransactionError("InvalidGasCoinUsage", "the gas coin cannot be transferred here")
        item = _object_argument(world, values, argument)
        if item.owner_address() != data.sender:
            raise TransactionError("MoveAbort", f"{item.object_id} cannot be transferred by the sender")
        tx.update(item, owner={"AddressOwner": recipient})
        values.unspent.discard(item.object_id)


def _split_coins(world: ObjectStore, tx: TransactionBuilder, data: TransactionData, values: _Values,
                 command: SplitCoins) -> None:
    coin = _object_argument(world, values, command.coin)
    if coin.type != move.SUI_COIN_TYPE or coin.owner_address() != data.sender:
        raise TransactionError("MoveAbort", "SplitCoins needs a Coin<SUI> the sender owns")
    amounts = [_pure_argument(values.inputs, amount, lambda reader: reader.u64()) for amount in command.amounts]
    reserved = data.gas.budget if coin.object_id == values.gas_coin_id else 0  # the budget stays for gas
    balance = coin.struct.number("balance")
    if sum(amounts) > balance - reserved:
        raise TransactionError("MoveAbort", "InsufficientCoinBalance: the coin does not cover the split")
    tx.update(coin, fields={"balance": U64(balance - sum(amounts))})
    for amount in amounts:  # the sender holds them until a TransferObjects names them
        created = tx.create(move.SUI_COIN_TYPE, {"balance": U64(amount)}, {"AddressOwner": data.sender})
        values.pending_results.append(created.object_id)
        values.unspent.add(created.object_id)
