"""MemWal's ``seal_approve`` PTB: build it for key-server requests, and validate incoming ones with the
key server's rules (Seal ``valid_ptb.rs``).

Bytes are a BCS ``ProgrammableTransaction`` (the TransactionKind payload without its leading ``00`` tag),
which is what ``/v1/fetch_key`` carries; the model and its encoding live in ``chain.programmable_transaction``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from chain import bcs
from chain.bcs import BcsError, BcsReader
from chain.errors import MalformedTransaction
from chain.programmable_transaction import (
    ArgumentKind,
    MoveCall,
    ProgrammableTransaction,
    ProgrammableTransactionBuilder,
    PureInput,
    SharedObjectInput,
)
from sealcrypto.errors import InvalidTransaction

MAX_PTB_BYTES = 128 * 1024
MAX_COMMANDS = 100
MAX_INNER_ID_BYTES = 1024
SEAL_APPROVE_PREFIX = "seal_approve"
MEMWAL_MODULE = "account"
MEMWAL_FUNCTION = "seal_approve"


@dataclass(frozen=True)
class SealApproveRequest:
    """A validated request: the package called and one (inner id, call) per command."""

    package: str
    calls: tuple[tuple[bytes, MoveCall], ...]


def build_seal_approve_ptb(
    package_id: str,
    calls: Sequence[tuple[bytes, str, int]],
    *,
    module: str = MEMWAL_MODULE,
    function: str = MEMWAL_FUNCTION,
) -> bytes:
    """``<pkg>::account::seal_approve(id, account)`` once per unique inner id.

    ``calls`` holds ``(inner_id, account_id, initial_shared_version)``; the account is passed as an
    immutable shared-object input (``seal_approve`` takes ``&MemWalAccount``), shared between calls
    that name the same account.
    """
    builder = ProgrammableTransactionBuilder()
    seen_ids: set[bytes] = set()
    for inner_id, account_id, initial_shared_version in calls:
        if inner_id in seen_ids:
            continue
        seen_ids.add(inner_id)
        id_argument = builder.pure(bcs.byte_vector(inner_id))
        account = builder.input(SharedObjectInput(account_id, initial_shared_version, mutable=False))
        builder.move_call(package_id, module, function, [id_argument, account])
    if not seen_ids:
        raise ValueError("at least one seal_approve call is required")
    return builder.finish().to_bcs()


def parse_programmable_transaction(raw: bytes, *, max_bytes: int = MAX_PTB_BYTES) -> ProgrammableTransaction:
    if len(raw) > max_bytes:
        raise InvalidTransaction("programmable transaction too large")
    try:
        return ProgrammableTransaction.from_bcs(raw)
    except MalformedTransaction as exc:
        raise InvalidTransaction(f"malformed programmable transaction: {exc}") from None


def validate_seal_approve(ptb: ProgrammableTransaction) -> SealApproveRequest:
    """Apply the key server's PTB rules and extract each call's inner id."""
    if not ptb.inputs:
        raise InvalidTransaction("a seal_approve PTB needs at least one input")
    if not 1 <= len(ptb.commands) <= MAX_COMMANDS:
        raise InvalidTransaction(f"a seal_approve PTB has 1..{MAX_COMMANDS} commands")
    move_calls = [command for command in ptb.commands if isinstance(command, MoveCall)]
    if len(move_calls) != len(ptb.commands):
        raise InvalidTransaction("only MoveCall commands are allowed")
    package = move_calls[0].package
    calls = []
    for command in move_calls:
        if command.package != package:
            raise InvalidTransaction("all calls must target the same package")
        if not command.function.startswith(SEAL_APPROVE_PREFIX):
            raise InvalidTransaction("only seal_approve* functions may be called")
        if not command.arguments or any(argument.kind is not ArgumentKind.INPUT for argument in command.arguments):
            raise InvalidTransaction("arguments must all be transaction inputs")
        if any(argument.index >= len(ptb.inputs) for argument in command.arguments):
            raise InvalidTransaction("argument refers to a missing input")
        first = ptb.inputs[command.arguments[0].index]
        if not isinstance(first, PureInput):
            raise InvalidTransaction("the first argument must be a pure vector<u8> id")
        calls.append((_decode_inner_id(first.value), command))
    return SealApproveRequest(package=package, calls=tuple(calls))


def _decode_inner_id(value: bytes) -> bytes:
    reader = BcsReader(value)
    try:
        inner_id = reader.byte_vector(MAX_INNER_ID_BYTES)
        reader.finish()
    except BcsError:
        raise InvalidTransaction("the id argument is not a BCS vector<u8>") from None
    return inner_id
