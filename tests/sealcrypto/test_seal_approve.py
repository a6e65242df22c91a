import pytest

from chain import bcs
from chain.programmable_transaction import PureInput, SharedObjectInput
from sealcrypto.errors import InvalidTransaction
from sealcrypto.seal_approve import build_seal_approve_ptb, parse_programmable_transaction, validate_seal_approve

PACKAGE = "0x" + "11" * 32
ACCOUNT = "0x" + "22" * 32


class TestBuild:
    def test_layout_matches_the_typescript_builder(self):
        # seal.md §3.3: the MemWal PTB decoded from the TS builder (142 bytes for one call).
        inner_id = bytes(range(32))
        raw = build_seal_approve_ptb(PACKAGE, [(inner_id, ACCOUNT, 7)])
        assert len(raw) == 142
        assert raw.startswith(b"\x02\x00\x21\x20" + inner_id + b"\x01\x01" + bytes.fromhex("22" * 32) + bcs.u64(7) + b"\x00\x01\x00")
        assert raw.endswith(b"\x07account\x0cseal_approve\x00\x02\x01\x00\x00\x01\x01\x00")

    def test_one_call_per_unique_id_sharing_the_account_input(self):
        raw = build_seal_approve_ptb(PACKAGE, [(b"a" * 32, ACCOUNT, 7), (b"b" * 32, ACCOUNT, 7), (b"a" * 32, ACCOUNT, 7)])
        ptb = parse_programmable_transaction(raw)
        assert len(ptb.commands) == 2 and len(ptb.inputs) == 3
        request = validate_seal_approve(ptb)
        assert [inner for inner, _ in request.calls] == [b"a" * 32, b"b" * 32]
        assert ptb.inputs[1] == SharedObjectInput(ACCOUNT, 7, mutable=False)

    def test_empty_calls(self):
        with pytest.raises(ValueError, match="at least one"):
            build_seal_approve_ptb(PACKAGE, [])


class TestValidate:
    def _ptb(self, commands, inputs=None):
        inputs = inputs if inputs is not None else [b"\x00" + bcs.byte_vector(bcs.byte_vector(b"id"))]
        return bcs.vector(inputs) + bcs.vector(commands)

    def _call(self, package=PACKAGE, function="seal_approve", arguments=(b"\x01\x00\x00",)):
        return b"\x00" + bcs.address(package) + bcs.string("account") + bcs.string(function) + b"\x00" + bcs.vector(list(arguments))

    def test_accepts_minimal_call(self):
        request = validate_seal_approve(parse_programmable_transaction(self._ptb([self._call()])))
        assert request.calls[0][0] == b"id" and request.package == PACKAGE

    @pytest.mark.parametrize(
        "build, message",
        [
            (lambda t: t._ptb([]), "1..100 commands"),
            (lambda t: t._ptb([t._call()], inputs=[]), "at least one input"),
            (lambda t: t._ptb([t._call(), t._call(package="0x" + "33" * 32)]), "same package"),
            (lambda t: t._ptb([t._call(function="steal")]), "seal_approve"),
            (lambda t: t._ptb([t._call(arguments=(b"\x00",))]), "transaction inputs"),
            (lambda t: t._ptb([t._call(arguments=(b"\x02\x00\x00",))]), "transaction inputs"),
            (lambda t: t._ptb([t._call(arguments=(b"\x01\x05\x00",))]), "missing input"),
            (lambda t: t._ptb([t._call()], inputs=[b"\x00" + bcs.byte_vector(b"\x05ab")]), "vector<u8>"),
        ],
    )
    def test_rejections(self, build, message):
        with pytest.raises(InvalidTransaction, match=message):
            validate_seal_approve(parse_programmable_transaction(build(self)))

    def test_rejects_other_commands_and_garbage(self):
        transfer = b"\x01" + bcs.vector([b"\x01\x00\x00"]) + b"\x01\x00\x00"  # TransferObjects([Input 0], Input 0)
        with pytest.raises(InvalidTransaction, match="only MoveCall"):
            validate_seal_approve(parse_programmable_transaction(self._ptb([self._call(), transfer])))
        with pytest.raises(InvalidTransaction, match="malformed"):
            parse_programmable_transaction(self._ptb([b"\x02"]))  # SplitCoins: outside the supported subset
        with pytest.raises(InvalidTransaction, match="malformed"):
            parse_programmable_transaction(b"\x01\x00")
        with pytest.raises(InvalidTransaction, match="too large"):
            parse_programmable_transaction(b"\x00" * 10, max_bytes=5)

    def test_pure_input_is_kept(self):
        ptb = parse_programmable_transaction(self._ptb([self._call()]))
        assert ptb.inputs == (PureInput(bcs.byte_vector(b"id")),)
