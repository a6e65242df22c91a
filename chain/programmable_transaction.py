"""Sui programmable transactions as one typed model: built here, encoded by pysui, decoded by us.

Everything that writes or reads a transaction uses these frozen dataclasses: the sidecar's Blob
metadata transaction (``chain.transactions``), the ``seal_approve`` PTB a Seal key server receives
(``sealcrypto.seal_approve``) and the localnet that executes what the sidecar signs. Encoding goes
through pysui's BCS types (``pysui.sui.sui_bcs.bcs``); decoding goes through ``chain.bcs.BcsReader``
under Sui's size caps, so every round trip checks one implementation against the other.

The subset: inputs ``Pure`` and ``Object`` (owned or immutable, shared, receiving); commands
``MoveCall``, ``TransferObjects`` and ``SplitCoins``; ``TransactionData`` V1 paid by gas coins, expiring ``None`` or at
an ``Epoch``. Anything else fails to decode with ``MalformedTransaction``. Type arguments are decoded
(as raw TypeTag bytes, so a key server can refuse them) but not encoded: nothing here calls generic code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TypeVar

from pysui.sui.sui_bcs import bcs as sui_bcs

from chain import bcs
from chain.address import normalize_address
from chain.base58 import b58encode, decode_digest
from chain.bcs import BcsError, BcsReader
from chain.errors import MalformedTransaction
from chain.reader import ObjectRef

# Sui's protocol limits (sui-protocol-config): a decoder never reads more than a node would accept.
MAX_TRANSACTION_BYTES = 128 * 1024
MAX_INPUTS = 2048
MAX_COMMANDS = 1024
MAX_ARGUMENTS = 512
MAX_TYPE_ARGUMENTS = 16
MAX_TYPE_DEPTH = 16
MAX_PURE_BYTES = 16 * 1024
MAX_GAS_PAYMENT_OBJECTS = 256
MAX_IDENTIFIER_BYTES = 128
DIGEST_BYTES = 32

# BCS enum tags (sui-types): CallArg, ObjectArg, Command, TypeTag.
_CALL_ARG_PURE, _CALL_ARG_OBJECT = 0, 1
_OBJECT_OWNED, _OBJECT_SHARED, _OBJECT_RECEIVING = 0, 1, 2
_COMMAND_MOVE_CALL, _COMMAND_TRANSFER_OBJECTS, _COMMAND_SPLIT_COINS = 0, 1, 2
_TYPE_TAG_VECTOR, _TYPE_TAG_STRUCT = 6, 7
_TYPE_TAG_PRIMITIVES = frozenset({0, 1, 2, 3, 4, 5, 8, 9, 10})  # bool, u8, u64, u128, address, signer, u16, u32, u256


class ArgumentKind(IntEnum):
    GAS_COIN = 0
    INPUT = 1
    RESULT = 2
    NESTED_RESULT = 3


@dataclass(frozen=True)
class PureInput:
    value: bytes  # the BCS bytes of the value


@dataclass(frozen=True)
class _InputByReference:
    reference: ObjectRef

    @property
    def object_id(self) -> str:
        return self.reference.object_id


@dataclass(frozen=True)
class OwnedObjectInput(_InputByReference):
    """``ImmOrOwnedObject``: an object the sender owns, or an immutable one."""


@dataclass(frozen=True)
class SharedObjectInput:
    object_id: str
    initial_shared_version: int
    mutable: bool


@dataclass(frozen=True)
class ReceivingInput(_InputByReference):
    """``Receiving<T>``: an object sent to another object, received in this transaction."""


ObjectInput = OwnedObjectInput | SharedObjectInput | ReceivingInput
Input = PureInput | ObjectInput


@dataclass(frozen=True)
class Argument:
    kind: ArgumentKind
    index: int = 0
    nested_index: int = 0

    @classmethod
    def input(cls, index: int) -> Argument:
        return cls(ArgumentKind.INPUT, index)

    @classmethod
    def gas_coin(cls) -> Argument:
        return cls(ArgumentKind.GAS_COIN)


@dataclass(frozen=True)
class MoveCall:
    package: str
    module: str
    function: str
    arguments: tuple[Argument, ...]
    type_arguments: tuple[bytes, ...] = ()  # each a TypeTag's BCS bytes


@dataclass(frozen=True)
class TransferObjects:
    objects: tuple[Argument, ...]
    recipient: Argument


@dataclass(frozen=True)
class SplitCoins:
    """New coins of ``amounts`` (pure u64 arguments) taken from ``coin``; command ``i``'s result ``j`` is coin ``j``."""

    coin: Argument
    amounts: tuple[Argument, ...]


Command = MoveCall | TransferObjects | SplitCoins


@dataclass(frozen=True)
class ProgrammableTransaction:
    inputs: tuple[Input, ...]
    commands: tuple[Command, ...]

    def to_bcs(self) -> bytes:
        """The ``ProgrammableTransaction`` bytes (what Seal's ``/v1/fetch_key`` carries as ``ptb``)."""
        return bytes(_pysui_programmable_transaction(self).serialize())

    @classmethod
    def from_bcs(cls, raw: bytes) -> ProgrammableTransaction:
        reader = _reader(raw)
        try:
            transaction = _read_programmable_transaction(reader)
            reader.finish()
        except BcsError as exc:
            raise MalformedTransaction(f"bad BCS: {exc}") from None
        return transaction


@dataclass(frozen=True)
class GasData:
    payment: tuple[ObjectRef, ...]
    owner: str
    price: int
    budget: int


@dataclass(frozen=True)
class TransactionData:
    """``TransactionData::V1`` of a programmable transaction: what a sender signs."""

    transaction: ProgrammableTransaction
    sender: str
    gas: GasData
    expiration_epoch: int | None = None

    def to_bcs(self) -> bytes:
        expiration = (
            sui_bcs.TransactionExpiration("None", None)
            if self.expiration_epoch is None
            else sui_bcs.TransactionExpiration("Epoch", self.expiration_epoch)
        )
        gas = sui_bcs.GasData(
            [_pysui_reference(coin) for coin in self.gas.payment], _pysui_address(self.gas.owner), self.gas.price, self.gas.budget
        )
        kind = sui_bcs.TransactionKind("ProgrammableTransaction", _pysui_programmable_transaction(self.transaction))
        data = sui_bcs.TransactionData("V1", sui_bcs.TransactionDataV1(kind, _pysui_address(self.sender), gas, expiration))
        return bytes(data.serialize())

    @classmethod
    def from_bcs(cls, raw: bytes) -> TransactionData:
        reader = _reader(raw)
        try:
            if reader.uleb128() != 0:
                raise MalformedTransaction("only TransactionData V1 is supported")
            if reader.uleb128() != 0:
                raise MalformedTransaction("only programmable transactions are supported")
            transaction = _read_programmable_transaction(reader)
            sender = reader.address()
            payment = _read_vector(reader, MAX_GAS_PAYMENT_OBJECTS, _read_reference)
            gas = GasData(payment, reader.address(), reader.u64(), reader.u64())
            expiration = reader.uleb128()
            if expiration not in (0, 1):
                raise MalformedTransaction("only None or Epoch expiration is supported")
            epoch = reader.u64() if expiration == 1 else None
            reader.finish()
        except BcsError as exc:
            raise MalformedTransaction(f"bad BCS: {exc}") from None
        return cls(transaction, sender, gas, epoch)


@dataclass
class ProgrammableTransactionBuilder:
    """Collects inputs and commands; an input equal to an earlier one reuses its slot, as the TS SDK does."""

    _inputs: list[Input] = field(default_factory=list)
    _commands: list[Command] = field(default_factory=list)

    def input(self, item: Input) -> Argument:
        if item not in self._inputs:
            self._inputs.append(item)
        return Argument.input(self._inputs.index(item))

    def pure(self, value: bytes) -> Argument:
        return self.input(PureInput(value))

    def move_call(self, package: str, module: str, function: str, arguments: Sequence[Argument]) -> None:
        self._commands.append(MoveCall(normalize_address(package), module, function, tuple(arguments)))

    def transfer_objects(self, objects: Sequence[Argument], recipient: Argument) -> None:
        self._commands.append(TransferObjects(tuple(objects), recipient))

    def split_coins(self, coin: Argument, amounts: Sequence[Argument]) -> list[Argument]:
        """The new coins, as nested results of this command."""
        index = len(self._commands)
        self._commands.append(SplitCoins(coin, tuple(amounts)))
        return [Argument(ArgumentKind.NESTED_RESULT, index, position) for position in range(len(amounts))]

    def finish(self) -> ProgrammableTransaction:
        if len(self._inputs) > MAX_INPUTS or len(self._commands) > MAX_COMMANDS:
            raise ValueError(f"at most {MAX_INPUTS} inputs and {MAX_COMMANDS} commands")
        return ProgrammableTransaction(tuple(self._inputs), tuple(self._commands))


# ---- encoding (pysui) ---------------------------------------------------------------------------


def _pysui_address(value: str) -> sui_bcs.Address:
    return sui_bcs.Address.from_str(normalize_address(value))


def _pysui_reference(ref: ObjectRef) -> sui_bcs.ObjectReference:
    return sui_bcs.ObjectReference(_pysui_address(ref.object_id), ref.version, sui_bcs.Digest.from_bytes(decode_digest(ref.digest)))


def _pysui_input(item: Input) -> sui_bcs.CallArg:
    if isinstance(item, PureInput):
        return sui_bcs.CallArg("Pure", list(item.value))
    if isinstance(item, OwnedObjectInput):
        argument = sui_bcs.ObjectArg("ImmOrOwnedObject", _pysui_reference(item.reference))
    elif isinstance(item, ReceivingInput):
        argument = sui_bcs.ObjectArg("Receiving", _pysui_reference(item.reference))
    else:
        shared = sui_bcs.SharedObjectReference(_pysui_address(item.object_id), item.initial_shared_version, item.mutable)
        argument = sui_bcs.ObjectArg("SharedObject", shared)
    return sui_bcs.CallArg("Object", argument)


def _pysui_argument(argument: Argument) -> sui_bcs.Argument:
    if argument.kind is ArgumentKind.GAS_COIN:
        return sui_bcs.Argument("GasCoin", None)
    if argument.kind is ArgumentKind.NESTED_RESULT:
        return sui_bcs.Argument("NestedResult", (argument.index, argument.nested_index))
    return sui_bcs.Argument("Input" if argument.kind is ArgumentKind.INPUT else "Result", argument.index)


def _pysui_command(command: Command) -> sui_bcs.Command:
    if isinstance(command, TransferObjects):
        objects = [_pysui_argument(argument) for argument in command.objects]
        return sui_bcs.Command("TransferObjects", sui_bcs.TransferObjects(objects, _pysui_argument(command.recipient)))
    if isinstance(command, SplitCoins):
        amounts = [_pysui_argument(argument) for argument in command.amounts]
        return sui_bcs.Command("SplitCoin", sui_bcs.SplitCoin(_pysui_argument(command.coin), amounts))
    if command.type_arguments:  # nothing we build is generic; pysui cannot read a TypeTag back from BCS
        raise ValueError("encoding a MoveCall with type arguments is not supported")
    call = sui_bcs.ProgrammableMoveCall(
        _pysui_address(command.package),
        command.module,
        command.function,
        [],
        [_pysui_argument(argument) for argument in command.arguments],
    )
    return sui_bcs.Command("MoveCall", call)


def _pysui_programmable_transaction(transaction: ProgrammableTransaction) -> sui_bcs.ProgrammableTransaction:
    return sui_bcs.ProgrammableTransaction(
        [_pysui_input(item) for item in transaction.inputs], [_pysui_command(command) for command in transaction.commands]
    )


# ---- decoding (chain.bcs) -----------------------------------------------------------------------

_Item = TypeVar("_Item")


def _reader(raw: bytes) -> BcsReader:
    if len(raw) > MAX_TRANSACTION_BYTES:
        raise MalformedTransaction(f"transaction exceeds {MAX_TRANSACTION_BYTES // 1024} KiB")
    return BcsReader(raw)


def _count(reader: BcsReader, cap: int) -> int:
    count = reader.uleb128()
    if count > cap:
        raise MalformedTransaction(f"vector of {count} exceeds the cap of {cap}")
    return count


def _read_vector(reader: BcsReader, cap: int, read: Callable[[BcsReader], _Item]) -> tuple[_Item, ...]:
    return tuple(read(reader) for _ in range(_count(reader, cap)))


def _read_programmable_transaction(reader: BcsReader) -> ProgrammableTransaction:
    inputs = _read_vector(reader, MAX_INPUTS, _read_input)
    commands = _read_vector(reader, MAX_COMMANDS, _read_command)
    return ProgrammableTransaction(inputs, commands)


def _read_reference(reader: BcsReader) -> ObjectRef:
    object_id = reader.address()
    version = reader.u64()
    digest = reader.byte_vector(DIGEST_BYTES)
    if len(digest) != DIGEST_BYTES:
        raise MalformedTransaction(f"object digest must be {DIGEST_BYTES} bytes")
    return ObjectRef(object_id, version, b58encode(digest))


def _read_input(reader: BcsReader) -> Input:
    tag = reader.uleb128()
    if tag == _CALL_ARG_PURE:
        return PureInput(reader.byte_vector(MAX_PURE_BYTES))
    if tag != _CALL_ARG_OBJECT:
        raise MalformedTransaction(f"unsupported input kind {tag}")
    kind = reader.uleb128()
    if kind == _OBJECT_OWNED:
        return OwnedObjectInput(_read_reference(reader))
    if kind == _OBJECT_SHARED:
        return SharedObjectInput(reader.address(), reader.u64(), reader.bool())
    if kind == _OBJECT_RECEIVING:
        return ReceivingInput(_read_reference(reader))
    raise MalformedTransaction(f"unsupported object input kind {kind}")


def _read_argument(reader: BcsReader) -> Argument:
    tag = reader.uleb128()
    if tag == ArgumentKind.GAS_COIN:
        return Argument(ArgumentKind.GAS_COIN)
    if tag in (ArgumentKind.INPUT, ArgumentKind.RESULT):
        return Argument(ArgumentKind(tag), reader.u16())
    if tag == ArgumentKind.NESTED_RESULT:
        return Argument(ArgumentKind.NESTED_RESULT, reader.u16(), reader.u16())
    raise MalformedTransaction(f"unknown argument kind {tag}")


def _read_command(reader: BcsReader) -> Command:
    tag = reader.uleb128()
    if tag == _COMMAND_MOVE_CALL:
        package = reader.address()
        module = reader.string(MAX_IDENTIFIER_BYTES)
        function = reader.string(MAX_IDENTIFIER_BYTES)
        type_arguments = tuple(_read_type_tag(reader, 0) for _ in range(_count(reader, MAX_TYPE_ARGUMENTS)))
        arguments = _read_vector(reader, MAX_ARGUMENTS, _read_argument)
        return MoveCall(package, module, function, arguments, type_arguments)
    if tag == _COMMAND_TRANSFER_OBJECTS:
        objects = _read_vector(reader, MAX_ARGUMENTS, _read_argument)
        return TransferObjects(objects, _read_argument(reader))
    if tag == _COMMAND_SPLIT_COINS:
        coin = _read_argument(reader)
        return SplitCoins(coin, _read_vector(reader, MAX_ARGUMENTS, _read_argument))
    raise MalformedTransaction(f"command kind {tag} is not supported")


def _read_type_tag(reader: BcsReader, depth: int) -> bytes:
    """Consume one TypeTag and return its BCS bytes."""
    if depth > MAX_TYPE_DEPTH:
        raise MalformedTransaction("type argument nested too deeply")
    tag = reader.uleb128()
    out = bcs.uleb128(tag)
    if tag in _TYPE_TAG_PRIMITIVES:
        return out
    if tag == _TYPE_TAG_VECTOR:
        return out + _read_type_tag(reader, depth + 1)
    if tag == _TYPE_TAG_STRUCT:  # address, module, name, type parameters
        out += bcs.address(reader.address())
        out += bcs.string(reader.string(MAX_IDENTIFIER_BYTES))
        out += bcs.string(reader.string(MAX_IDENTIFIER_BYTES))
        parameters = [_read_type_tag(reader, depth + 1) for _ in range(_count(reader, MAX_TYPE_ARGUMENTS))]
        return out + bcs.vector(parameters)
    raise MalformedTransaction(f"unknown type tag {tag}")
