"""BCS ``ProgrammableTransaction`` for Seal key-server requests: build MemWal's seal_approve calls,
and parse/validate incoming ones with the key server's rules (Seal ``valid_ptb.rs``).

Bytes are the TransactionKind payload without its leading ``00`` tag, which is what
``/v1/fetch_key`` carries. Only the subset Seal needs is parsed: Pure/Object inputs and MoveCall
commands; anything else is rejected as ``InvalidTransaction``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from chain import bcs
from chain.bcs import BcsError, BcsReader
from sealcrypto.errors import InvalidTransaction

MAX_PTB_BYTES = 128 * 1024
MAX_COMMANDS = 100
MAX_INPUTS = 512
MAX_IDENTIFIER_BYTES = 128
MAX_TYPE_DEPTH = 8
MAX_INNER_ID_BYTES = 1024
SEAL_APPROVE_PREFIX = "seal_approve"
MEMWAL_MODULE = "account"
MEMWAL_FUNCTION = "seal_approve"

# CallArg, ObjectArg, Command and Argument enum tags (sui-types, BCS).
CALL_ARG_PURE, CALL_ARG_OBJECT = 0, 1
OBJECT_IMM_OR_OWNED, OBJECT_SHARED, OBJECT_RECEIVING = 0, 1, 2
COMMAND_MOVE_CALL = 0
ARGUMENT_GAS_COIN, ARGUMENT_INPUT, ARGUMENT_RESULT, ARGUMENT_NESTED_RESULT = 0, 1, 2, 3


@dataclass(frozen=True)
class PureInput:
    value: bytes


@dataclass(frozen=True)
class ObjectInput:
    kind: int  # OBJECT_IMM_OR_OWNED / OBJECT_SHARED / OBJECT_RECEIVING
    object_id: str
    version: int  # version, or initial_shared_version for shared objects
    mutable: bool = False
    digest: bytes = b""


@dataclass(frozen=True)
class Argument:
    kind: int
    index: int = 0
    result_index: int = 0


@dataclass(frozen=True)
class MoveCall:
    package: str
    module: str
    function: str
    type_arguments: tuple[bytes, ...]
    arguments: tuple[Argument, ...]


@dataclass(frozen=True)
class ProgrammableTransaction:
    inputs: tuple[PureInput | ObjectInput, ...]
    commands: tuple[MoveCall, ...]


@dataclass(frozen=True)
class SealApproveRequest:
    """A validated request: the package called and one (inner id, call) per command."""

    package: str
    calls: tuple[tuple[bytes, MoveCall], ...]


def build_seal_approve_ptb(
    package_id: str | bytes,
    calls: Sequence[tuple[bytes, str, int]],
    *,
    module: str = MEMWAL_MODULE,
    function: str = MEMWAL_FUNCTION,
) -> bytes:
    """``<pkg>::account::seal_approve(id, account)`` once per unique inner id.

    ``calls`` holds ``(inner_id, account_id, initial_shared_version)``; the account is passed as an
    immutable shared-object input, shared between calls that name the same account.
    """
    inputs: list[bytes] = []
    object_inputs: dict[tuple[str, int], int] = {}
    commands: list[bytes] = []
    seen_ids: set[bytes] = set()
    for inner_id, account_id, initial_shared_version in calls:
        if inner_id in seen_ids:
            continue
        seen_ids.add(inner_id)
        inputs.append(bcs.uleb128(CALL_ARG_PURE) + bcs.byte_vector(bcs.byte_vector(inner_id)))
        id_input = len(inputs) - 1
        key = (bcs.address(account_id).hex(), initial_shared_version)
        if key not in object_inputs:
            inputs.append(
                bcs.uleb128(CALL_ARG_OBJECT)
                + bcs.uleb128(OBJECT_SHARED)
                + bcs.address(account_id)
                + bcs.u64(initial_shared_version)
                + b"\x00"  # mutable = false: seal_approve takes &MemWalAccount
            )
            object_inputs[key] = len(inputs) - 1
        arguments = [_input_argument(id_input), _input_argument(object_inputs[key])]
        commands.append(
            bcs.uleb128(COMMAND_MOVE_CALL)
            + bcs.address(package_id)
            + bcs.string(module)
            + bcs.string(function)
            + bcs.uleb128(0)
            + bcs.vector(arguments)
        )
    if not commands:
        raise ValueError("at least one seal_approve call is required")
    return bcs.vector(inputs) + bcs.vector(commands)


def parse_programmable_transaction(raw: bytes, *, max_bytes: int = MAX_PTB_BYTES) -> ProgrammableTransaction:
    if len(raw) > max_bytes:
        raise InvalidTransaction("programmable transaction too large")
    reader = BcsReader(raw)
    try:
        input_count = reader.uleb128()
        if input_count > MAX_INPUTS:
            raise InvalidTransaction("too many inputs")
        inputs = tuple(_read_input(reader) for _ in range(input_count))
        command_count = reader.uleb128()
        if command_count > MAX_COMMANDS:
            raise InvalidTransaction("too many commands")
        commands = tuple(_read_command(reader) for _ in range(command_count))
        reader.finish()
    except BcsError as exc:
        raise InvalidTransaction(f"malformed programmable transaction: {exc}") from None
    return ProgrammableTransaction(inputs, commands)


def validate_seal_approve(ptb: ProgrammableTransaction) -> SealApproveRequest:
    """Apply the key server's PTB rules and extract each call's inner id."""
    if not ptb.inputs:
        raise InvalidTransaction("a seal_approve PTB needs at least one input")
    if not 1 <= len(ptb.commands) <= MAX_COMMANDS:
        raise InvalidTransaction("a seal_approve PTB has 1..100 commands")
    package = ptb.commands[0].package
    calls = []
    for command in ptb.commands:
        if command.package != package:
            raise InvalidTransaction("all calls must target the same package")
        if not command.function.startswith(SEAL_APPROVE_PREFIX):
            raise InvalidTransaction("only seal_approve* functions may be called")
        if not command.arguments or any(arg.kind != ARGUMENT_INPUT for arg in command.arguments):
            raise InvalidTransaction("arguments must all be transaction inputs")
        if any(arg.index >= len(ptb.inputs) for arg in command.arguments):
            raise InvalidTransaction("argument refers to a missing input")
        first = ptb.inputs[command.arguments[0].index]
        if not isinstance(first, PureInput):
            raise InvalidTransaction("the first argument must be a pure vector<u8> id")
        calls.append((_decode_inner_id(first.value), command))
    return SealApproveRequest(package=package, calls=tuple(calls))


def _input_argument(index: int) -> bytes:
    return bcs.uleb128(ARGUMENT_INPUT) + bcs.u16(index)


def _decode_inner_id(value: bytes) -> bytes:
    reader = BcsReader(value)
    try:
        inner_id = reader.byte_vector(MAX_INNER_ID_BYTES)
        reader.finish()
    except BcsError:
        raise InvalidTransaction("the id argument is not a BCS vector<u8>") from None
    return inner_id


def _read_input(reader: BcsReader) -> PureInput | ObjectInput:
    tag = reader.uleb128()
    if tag == CALL_ARG_PURE:
        return PureInput(reader.byte_vector(MAX_PTB_BYTES))
    if tag != CALL_ARG_OBJECT:
        raise InvalidTransaction(f"unsupported input kind {tag}")
    kind = reader.uleb128()
    if kind == OBJECT_SHARED:
        return ObjectInput(kind, reader.address(), reader.u64(), mutable=reader.bool())
    if kind in (OBJECT_IMM_OR_OWNED, OBJECT_RECEIVING):
        object_id, version = reader.address(), reader.u64()
        return ObjectInput(kind, object_id, version, digest=reader.byte_vector(64))
    raise InvalidTransaction(f"unsupported object input kind {kind}")


def _read_command(reader: BcsReader) -> MoveCall:
    tag = reader.uleb128()
    if tag != COMMAND_MOVE_CALL:
        raise InvalidTransaction("only MoveCall commands are allowed")
    package = reader.address()
    module = reader.string(MAX_IDENTIFIER_BYTES)
    function = reader.string(MAX_IDENTIFIER_BYTES)
    type_arguments = tuple(_read_type_tag(reader, 0) for _ in range(_bounded(reader, 16)))
    arguments = tuple(_read_argument(reader) for _ in range(_bounded(reader, 256)))
    return MoveCall(package, module, function, type_arguments, arguments)


def _read_argument(reader: BcsReader) -> Argument:
    kind = reader.uleb128()
    if kind == ARGUMENT_GAS_COIN:
        return Argument(kind)
    if kind in (ARGUMENT_INPUT, ARGUMENT_RESULT):
        return Argument(kind, reader.u16())
    if kind == ARGUMENT_NESTED_RESULT:
        return Argument(kind, reader.u16(), reader.u16())
    raise InvalidTransaction(f"unknown argument kind {kind}")


def _read_type_tag(reader: BcsReader, depth: int) -> bytes:
    """Consume one TypeTag and return its raw BCS bytes."""
    if depth > MAX_TYPE_DEPTH:
        raise InvalidTransaction("type argument nested too deeply")
    tag = reader.uleb128()
    out = bcs.uleb128(tag)
    if tag in (0, 1, 2, 3, 4, 5, 8, 9, 10):  # primitives and signer
        return out
    if tag == 6:  # vector<T>
        return out + _read_type_tag(reader, depth + 1)
    if tag == 7:  # struct: address, module, name, type params
        out += bcs.address(reader.address())
        out += bcs.string(reader.string(MAX_IDENTIFIER_BYTES))
        out += bcs.string(reader.string(MAX_IDENTIFIER_BYTES))
        params = [_read_type_tag(reader, depth + 1) for _ in range(_bounded(reader, 16))]
        return out + bcs.vector(params)
    raise InvalidTransaction(f"unknown type tag {tag}")


def _bounded(reader: BcsReader, limit: int) -> int:
    count = reader.uleb128()
    if count > limit:
        raise InvalidTransaction("too many elements")
    return count
