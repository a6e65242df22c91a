"""chain.transactions: the pysui-built metadata+transfer transaction, decoded independently."""

from __future__ import annotations

import base64
import hashlib

import nacl.signing
import pytest

from chain.base58 import b58encode
from chain.programmable_transaction import MoveCall, OwnedObjectInput, PureInput, TransactionData, TransferObjects
from chain.reader import ObjectRef
from chain.transactions import (
    BlobTags,
    BlobTransfer,
    build_blob_metadata_transaction,
    build_blob_transfers_transaction,
    sign_transaction,
    transaction_digest,
)

SEED = bytes(range(1, 33))
WALRUS = "0x" + "0a" * 32


def _ref(byte: int, version: int) -> ObjectRef:
    return ObjectRef("0x" + f"{byte:02x}" * 32, version, b58encode(bytes([byte]) * 32))


def _build(**overrides):
    arguments = dict(
        seed=SEED, walrus_package_id=WALRUS, blobs=[_ref(1, 5), _ref(2, 6)],
        tags=BlobTags(owner="0x" + "cd" * 32, namespace="", memwal_package_id="0x" + "ee" * 32),
        gas_coins=[_ref(3, 9)], gas_price=1000, gas_budget=10_000_000,
    )
    arguments.update(overrides)
    return build_blob_metadata_transaction(**arguments)


class TestBuildBlobMetadataTransaction:
    def test_decodes_to_metadata_calls_then_one_transfer(self):
        tx_bytes, _ = _build()
        data = TransactionData.from_bcs(tx_bytes)
        calls = [command for command in data.transaction.commands if isinstance(command, MoveCall)]
        assert len(calls) == 6 and {call.function for call in calls} == {"insert_or_update_metadata_pair"}
        assert all(call.package == WALRUS and call.module == "blob" for call in calls)
        assert isinstance(data.transaction.commands[-1], TransferObjects) and len(data.transaction.commands[-1].objects) == 2
        assert (data.gas.price, data.gas.budget, data.gas.payment[0].version) == (1000, 10_000_000, 9)
        assert data.transaction.inputs[0] == OwnedObjectInput(_ref(1, 5))

    def test_empty_namespace_becomes_default(self):
        pairs = BlobTags(owner="0x1", namespace="", memwal_package_id="0x2").pairs()
        assert pairs[0] == ("memwal_namespace", "default")

    def test_pysui_signature_equals_our_own_and_verifies(self):
        tx_bytes, signature = _build()
        assert signature == sign_transaction(SEED, tx_bytes)
        raw = base64.b64decode(signature)
        digest = hashlib.blake2b(b"\x00\x00\x00" + tx_bytes, digest_size=32).digest()
        nacl.signing.VerifyKey(raw[65:]).verify(digest, raw[1:65])

    def test_digest_is_stable_base58(self):
        tx_bytes, _ = _build()
        assert transaction_digest(tx_bytes) == transaction_digest(bytes(tx_bytes))
        assert 43 <= len(transaction_digest(tx_bytes)) <= 44

    def test_rejects_too_many_blobs(self):
        with pytest.raises(ValueError, match="blobs per transaction"):
            _build(blobs=[_ref(n, 1) for n in range(1, 22)])

    def test_rejects_missing_gas(self):
        with pytest.raises(ValueError, match="gas coins"):
            _build(gas_coins=[])

    def test_rejects_bad_digest(self):
        with pytest.raises(ValueError, match="32 bytes"):
            _build(blobs=[ObjectRef("0x1", 1, "abc")])


class TestBuildBlobTransfersTransaction:
    """Several jobs' Blobs in one transaction, each with its own tags; one TransferObjects per owner."""

    OWNER_A, OWNER_B = "0x" + "a1" * 32, "0x" + "b2" * 32

    def _tags(self, owner: str, namespace: str) -> BlobTags:
        return BlobTags(owner=owner, namespace=namespace, memwal_package_id="0x" + "ee" * 32)

    def _batch(self, transfers):
        return build_blob_transfers_transaction(seed=SEED, walrus_package_id=WALRUS, transfers=transfers,
                                                gas_coins=[_ref(3, 9)], gas_price=1000, gas_budget=30_000_000)

    def test_each_blob_gets_its_own_tags_and_goes_to_its_owner(self):
        transfers = [BlobTransfer(_ref(1, 5), self._tags(self.OWNER_A, "notes")),
                     BlobTransfer(_ref(2, 6), self._tags(self.OWNER_B, "work")),
                     BlobTransfer(_ref(4, 7), self._tags(self.OWNER_A, "work"))]
        data = TransactionData.from_bcs(self._batch(transfers)[0])
        inputs = data.transaction.inputs
        pure = {index: item.value for index, item in enumerate(inputs) if isinstance(item, PureInput)}
        metadata: dict[int, dict[str, str]] = {}
        for call in (command for command in data.transaction.commands if isinstance(command, MoveCall)):
            blob, key, value = (argument.index for argument in call.arguments)
            metadata.setdefault(blob, {})[_string(pure[key])] = _string(pure[value])
        assert metadata == {
            0: {"memwal_namespace": "notes", "memwal_owner": self.OWNER_A, "memwal_package_id": "0x" + "ee" * 32},
            1: {"memwal_namespace": "work", "memwal_owner": self.OWNER_B, "memwal_package_id": "0x" + "ee" * 32},
            2: {"memwal_namespace": "work", "memwal_owner": self.OWNER_A, "memwal_package_id": "0x" + "ee" * 32},
        }
        moves = [command for command in data.transaction.commands if isinstance(command, TransferObjects)]
        recipients = {"0x" + pure[move.recipient.index].hex(): [argument.index for argument in move.objects]
                      for move in moves}
        assert recipients == {self.OWNER_A: [0, 2], self.OWNER_B: [1]}
        assert len(pure) == len(set(pure.values()))  # every distinct string is one input

    def test_one_owner_is_byte_for_byte_the_single_job_transaction(self):
        tags = self._tags(self.OWNER_A, "notes")
        assert self._batch([BlobTransfer(_ref(1, 5), tags), BlobTransfer(_ref(2, 6), tags)])[0] == _build(
            blobs=[_ref(1, 5), _ref(2, 6)], tags=tags, gas_budget=30_000_000)[0]

    def test_a_blob_twice_or_too_many_blobs_are_refused(self):
        tags = self._tags(self.OWNER_A, "notes")
        with pytest.raises(ValueError, match="once per transaction"):
            self._batch([BlobTransfer(_ref(1, 5), tags), BlobTransfer(_ref(1, 5), tags)])
        with pytest.raises(ValueError, match="blobs per transaction"):
            self._batch([BlobTransfer(_ref(n, 1), tags) for n in range(1, 22)])


def _string(encoded: bytes) -> str:
    """A BCS string: ULEB128 length, then UTF-8 (all test strings are shorter than 128 bytes)."""
    assert encoded[0] == len(encoded) - 1
    return encoded[1:].decode("utf-8")
