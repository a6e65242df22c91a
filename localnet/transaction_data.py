"""Decoding Sui ``TransactionData`` BCS (V1, programmable transactions) for the localnet.

Written against ``chain.bcs.BcsReader`` rather than pysui, so the localnet checks the bytes
``chain.transactions`` builds with an independent decoder. Only what a programmable transaction can
carry is accepted; sponsored gas, type arguments, ``ValidDuring`` expiry and the funds-withdrawal
input are refused as unsupported.
"""

from __future__ import annotations

from dataclasses import dataclass

from chain.base58 import b58encode
from chain.bcs import BcsError, BcsReader

MAX_TRANSACTION_BYTES = 128 * 1024  # Sui's own limit on a transaction's size
MAX_INPUTS = 2048
MAX_COMMANDS = 1024
MAX_ARGUMENTS = 512


class MalformedTransaction(ValueError):
    """The bytes are not a ``TransactionData`` this localnet can decode."""


@dataclass(frozen=True)
class ObjectReference:
    object_id: str
    version: int
    digest: str  # base58


@dataclass(frozen=True)
class PureInput:
    data: bytes


@dataclass(frozen=True)
class OwnedInput:
    reference: ObjectReference


@dataclass(frozen=True)
class SharedInput:
    object_id: str
    initial_shared_version: int
    mutable: bool


@dataclass(frozen=True)
class Argument:
    kind: str  # "GasCoin" | "Input" | "Result" | "NestedResult"
    index: int = 0
    nested_index: int = 0


@dataclass(frozen=True)
class MoveCall:
    package: str
    module: str
    function: str
    arguments: tuple[Argument, ...]


@dataclass(frozen=True)
class TransferObjects:
    objects: tuple[Argument, ...]
    recipient: Argument


@dataclass(frozen=True)
class TransactionData:
    inputs: tuple[PureInput | OwnedInput | SharedInput, ...]
    commands: tuple[MoveCall | TransferObjects, ...]
    sender: str
    gas_payment: tuple[ObjectReference, ...]
    gas_owner: str
    gas_price: int
    gas_budget: int


def decode_transaction_data(raw: bytes) -> TransactionData:
    if len(raw) > MAX_TRANSACTION_BYTES:
        raise MalformedTransaction("transaction exceeds 128 KiB")
    reader = BcsReader(raw)
    try:
        if reader.uleb128() != 0:
            raise MalformedTransaction("only TransactionData V1 is supported")
        if reader.uleb128() != 0:
            raise MalformedTransaction("only programmable transactions are supported")
        inputs = tuple(_input(reader) for _ in range(_count(reader, MAX_INPUTS)))
        commands = tuple(_command(reader) for _ in range(_count(reader, MAX_COMMANDS)))
        sender = reader.address()
        payment = tuple(_reference(reader) for _ in range(_count(reader, 64)))
        gas_owner = reader.address()
        gas_price = reader.u64()
        gas_budget = reader.u64()
        expiration = reader.uleb128()
        if expiration == 1:
            reader.u64()
        elif expiration != 0:
            raise MalformedTransaction("only None or Epoch expiration is supported")
        reader.finish()
    except BcsError as exc:
        raise MalformedTransaction(f"bad BCS: {exc}") from exc
    return TransactionData(inputs, commands, sender, payment, gas_owner, gas_price, gas_budget)


def _count(reader: BcsReader, cap: int) -> int:
    count = reader.uleb128()
    if count > cap:
        raise MalformedTransaction(f"vector of {count} exceeds the cap of {cap}")
    return count


def _reference(reader: BcsReader) -> ObjectReference:
    object_id = reader.address()
    version = reader.u64()
    digest = reader.byte_vector(32)
    if len(digest) != 32:
        raise MalformedTransaction("object digest must be 32 bytes")
    return ObjectReference(object_id, version, b58encode(digest))


def _input(reader: BcsReader) -> PureInput | OwnedInput | SharedInput:
    tag = reader.uleb128()
    if tag == 0:
        return PureInput(reader.byte_vector(16 * 1024))
    if tag != 1:
        raise MalformedTransaction(f"unsupported call argument kind {tag}")
    object_tag = reader.uleb128()
    if object_tag == 0:
        return OwnedInput(_reference(reader))
    if object_tag == 1:
        return SharedInput(reader.address(), reader.u64(), reader.bool())
    raise MalformedTransaction("receiving objects are not supported")


def _argument(reader: BcsReader) -> Argument:
    tag = reader.uleb128()
    if tag == 0:
        return Argument("GasCoin")
    if tag == 1:
        return Argument("Input", reader.u16())
    if tag == 2:
        return Argument("Result", reader.u16())
    if tag == 3:
        return Argument("NestedResult", reader.u16(), reader.u16())
    raise MalformedTransaction(f"unknown argument kind {tag}")


def _command(reader: BcsReader) -> MoveCall | TransferObjects:
    tag = reader.uleb128()
    if tag == 0:
        package = reader.address()
        module = reader.string(128)
        function = reader.string(128)
        if reader.uleb128() != 0:
            raise MalformedTransaction("type arguments are not supported")
        arguments = tuple(_argument(reader) for _ in range(_count(reader, MAX_ARGUMENTS)))
        return MoveCall(package, module, function, arguments)
    if tag == 1:
        objects = tuple(_argument(reader) for _ in range(_count(reader, MAX_ARGUMENTS)))
        return TransferObjects(objects, _argument(reader))
    raise MalformedTransaction(f"command kind {tag} is not supported by the localnet")
