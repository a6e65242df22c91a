"""chain.programmable_transaction: pysui encodes, our reader decodes; each checks the other."""

from __future__ import annotations

import pytest

from chain import bcs
from chain.base58 import b58encode
from chain.errors import MalformedTransaction
from chain.programmable_transaction import (
    MAX_PURE_BYTES,
    MAX_TRANSACTION_BYTES,
    Argument,
    ArgumentKind,
    GasData,
    MoveCall,
    OwnedObjectInput,
    ProgrammableTransaction,
    ProgrammableTransactionBuilder,
    PureInput,
    ReceivingInput,
    SharedObjectInput,
    SplitCoins,
    TransactionData,
    TransferObjects,
)
from chain.reader import ObjectRef

SENDER = "0x" + "ab" * 32
PACKAGE = "0x" + "0c" * 32


def _ref(byte: int, version: int) -> ObjectRef:
    return ObjectRef("0x" + f"{byte:02x}" * 32, version, b58encode(bytes([byte]) * 32))


def _every_kind() -> ProgrammableTransaction:
    return ProgrammableTransaction(
        inputs=(
            PureInput(bcs.u64(7)),
            OwnedObjectInput(_ref(1, 3)),
            SharedObjectInput("0x" + "02" * 32, 5, mutable=True),
            ReceivingInput(_ref(3, 9)),
        ),
        commands=(
            MoveCall(PACKAGE, "module", "function", (Argument.input(0), Argument(ArgumentKind.GAS_COIN))),
            MoveCall(PACKAGE, "module", "other", (Argument(ArgumentKind.RESULT, 0), Argument(ArgumentKind.NESTED_RESULT, 0, 1))),
            TransferObjects((Argument.input(1), Argument.input(3)), Argument.input(0)),
            SplitCoins(Argument.gas_coin(), (Argument.input(0), Argument.input(0))),
        ),
    )


class TestRoundTrip:
    def test_every_supported_kind_survives_encode_then_decode(self):
        transaction = _every_kind()
        assert ProgrammableTransaction.from_bcs(transaction.to_bcs()) == transaction

    @pytest.mark.parametrize("epoch", [None, 42])
    def test_transaction_data(self, epoch):
        data = TransactionData(_every_kind(), SENDER, GasData((_ref(9, 1), _ref(10, 2)), SENDER, 1000, 5_000_000), epoch)
        raw = data.to_bcs()
        assert TransactionData.from_bcs(raw) == data
        assert raw[:2] == b"\x00\x00"  # V1, ProgrammableTransaction

    def test_type_arguments_are_decoded_but_not_encoded(self):
        u8_vector = bcs.uleb128(6) + bcs.uleb128(1)
        coin = bcs.uleb128(7) + bcs.address("0x2") + bcs.string("coin") + bcs.string("Coin") + bcs.vector([bcs.uleb128(2)])
        call = b"\x00" + bcs.address(PACKAGE) + bcs.string("m") + bcs.string("f") + bcs.vector([u8_vector, coin]) + b"\x00"
        decoded = ProgrammableTransaction.from_bcs(bcs.vector([]) + bcs.vector([call]))
        assert decoded.commands[0].type_arguments == (u8_vector, coin)
        with pytest.raises(ValueError, match="type arguments"):
            decoded.to_bcs()

    def test_split_coins_results_are_nested_results_of_the_split(self):
        builder = ProgrammableTransactionBuilder()
        builder.pure(bcs.u64(1))
        coins = builder.split_coins(Argument.gas_coin(), [builder.pure(bcs.u64(5)), builder.pure(bcs.u64(6))])
        assert coins == [Argument(ArgumentKind.NESTED_RESULT, 0, 0), Argument(ArgumentKind.NESTED_RESULT, 0, 1)]
        transaction = builder.finish()
        assert transaction.commands == (SplitCoins(Argument.gas_coin(), (Argument.input(1), Argument.input(2))),)
        assert ProgrammableTransaction.from_bcs(transaction.to_bcs()) == transaction

    def test_builder_reuses_equal_inputs(self):
        builder = ProgrammableTransactionBuilder()
        first = builder.pure(bcs.string("a"))
        assert builder.pure(bcs.string("b")) == Argument.input(1)
        assert builder.pure(bcs.string("a")) == first == Argument.input(0)
        builder.move_call("0xc", "m", "f", [first])
        transaction = builder.finish()
        assert len(transaction.inputs) == 2
        assert transaction.commands == (MoveCall("0x" + "0" * 63 + "c", "m", "f", (first,)),)


class TestDecodingRefuses:
    def _data(self) -> bytes:
        return TransactionData(_every_kind(), SENDER, GasData((_ref(9, 1),), SENDER, 1, 1)).to_bcs()

    def test_trailing_and_truncated_bytes(self):
        raw = self._data()
        with pytest.raises(MalformedTransaction, match="trailing"):
            TransactionData.from_bcs(raw + b"\x00")
        with pytest.raises(MalformedTransaction, match="end of BCS"):
            TransactionData.from_bcs(raw[:-1])

    def test_other_versions_and_kinds(self):
        raw = self._data()
        with pytest.raises(MalformedTransaction, match="V1"):
            TransactionData.from_bcs(b"\x01" + raw[1:])
        with pytest.raises(MalformedTransaction, match="programmable"):
            TransactionData.from_bcs(b"\x00\x01" + raw[2:])

    def test_valid_during_expiration(self):
        raw = self._data()
        with pytest.raises(MalformedTransaction, match="expiration"):
            TransactionData.from_bcs(raw[:-1] + b"\x02")

    def test_oversized_transaction(self):
        with pytest.raises(MalformedTransaction, match="exceeds"):
            ProgrammableTransaction.from_bcs(bytes(MAX_TRANSACTION_BYTES + 1))

    def test_oversized_pure_input(self):
        raw = bcs.vector([b"\x00" + bcs.byte_vector(bytes(MAX_PURE_BYTES + 1))]) + bcs.vector([])
        with pytest.raises(MalformedTransaction, match="cap"):
            ProgrammableTransaction.from_bcs(raw)

    def test_short_object_digest(self):
        owned = b"\x01\x00" + bcs.address(SENDER) + bcs.u64(1) + bcs.byte_vector(b"\x01" * 31)
        with pytest.raises(MalformedTransaction, match="32 bytes"):
            ProgrammableTransaction.from_bcs(bcs.vector([owned]) + bcs.vector([]))

    @pytest.mark.parametrize(
        "inputs, commands, message",
        [
            ([b"\x02"], [], "input kind 2"),
            ([b"\x01\x03"], [], "object input kind 3"),
            ([], [b"\x03"], "command kind 3"),  # MergeCoins
            ([], [b"\x00" + bcs.address(PACKAGE) + bcs.string("m") + bcs.string("f") + b"\x00\x01\x04"], "argument kind 4"),
            ([], [b"\x00" + bcs.address(PACKAGE) + bcs.string("m") + bcs.string("f") + b"\x01\x0b\x00"], "type tag 11"),
        ],
    )
    def test_unsupported_shapes(self, inputs, commands, message):
        with pytest.raises(MalformedTransaction, match=message):
            ProgrammableTransaction.from_bcs(bcs.vector(inputs) + bcs.vector(commands))

    def test_type_nested_too_deeply(self):
        nested = bcs.uleb128(6) * 20 + bcs.uleb128(1)
        call = b"\x00" + bcs.address(PACKAGE) + bcs.string("m") + bcs.string("f") + bcs.vector([nested]) + b"\x00"
        with pytest.raises(MalformedTransaction, match="deeply"):
            ProgrammableTransaction.from_bcs(bcs.vector([]) + bcs.vector([call]))
