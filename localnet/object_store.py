"""The localnet's Sui state: objects, dynamic fields, events and transactions, stored and queried.

State survives restarts, and saving costs what a transaction changed, not the whole state: each
committed transaction appends one JSON line (its objects, fields, events and record) to a journal next
to the state file and flushes it before the transaction returns, so a process killed at any point loses
nothing that was acknowledged (a torn last line belongs to a transaction that never returned and is
skipped). Loading reads the snapshot, replays the journal, and folds both into a new snapshot (temp file
+ rename, then the journal is emptied); a journal past ``MAX_JOURNAL_BYTES`` is folded in the same way
while running. Journal lines carry their transaction's position, so a line the snapshot already holds
(a crash between the rename and emptying the journal) is not applied twice. One lock guards everything, because the JSON-RPC, GraphQL, gRPC and Walrus
stand-ins share one store. Versions follow Sui's Lamport rule: every transaction writes its objects
at one new version, higher than any version before it. Dynamic fields live at the object id Sui derives
(``chain.dynamic_fields``). The Move behaviour (MemWal accounts, Walrus blobs, Seal key servers, coins)
lives in ``localnet.move``, transaction execution in ``localnet.execution``, and ``localnet.world.World``
puts the three together; this module only stores and queries.

Indexing lag: a real network's GraphQL and gRPC reads come from an index that trails execution. With
``indexing_lag_seconds`` > 0, ``read_view()`` shows the state as of the last transaction committed at
least that long ago (each transaction is a checkpoint here), while execution and JSON-RPC (a full node
with ``WaitForLocalExecution``) see the current state. Every committed version is kept in memory so a
view can be rebuilt; after a restart everything loaded counts as indexed.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from chain.address import normalize_address
from chain.base58 import b58encode
from chain.dynamic_fields import dynamic_field_id
from chain.move_json import normalize_type
from localnet import move_values
from localnet.move_values import MoveValue, Struct, Uid

STATE_FORMAT = 2  # 2: dynamic fields at Sui's derived ids (format 1 is migrated on load)
# The localnet's "genesis checkpoint digest": its first four bytes, hex, are the chain identifier.
GENESIS_CHECKPOINT_DIGEST = hashlib.blake2b(b"memwal-enclave localnet genesis", digest_size=32).digest()
CHAIN_IDENTIFIER = GENESIS_CHECKPOINT_DIGEST[:4].hex()
MAX_STATE_BYTES = 256 * 1024 * 1024
MAX_JOURNAL_BYTES = 64 * 1024 * 1024  # past this, the journal is folded into the snapshot
MAX_JOURNAL_LINE_BYTES = 16 * 1024 * 1024
_LOADED = -1  # history position of everything read from the state file: always indexed


class MoveAbort(Exception):
    """A seeded or executed Move call aborted; ``code`` mirrors the Move abort code."""

    def __init__(self, function: str, code: int, reason: str) -> None:
        super().__init__(f"MoveAbort in {function} with code {code}: {reason}")
        self.function = function
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class StoredObject:
    object_id: str
    version: int
    digest: str
    owner: object  # JSON-RPC form: {"AddressOwner": a} | {"ObjectOwner": id} | {"Shared": {...}} | "Immutable"
    type: str  # "package" for packages
    contents: Struct | None
    previous_transaction: str
    name_type: str | None = None  # set on dynamic-field objects

    def owner_address(self) -> str | None:
        return self.owner.get("AddressOwner") if isinstance(self.owner, dict) else None

    @property
    def struct(self) -> Struct:
        """The Move contents; packages have none."""
        if self.contents is None:
            raise TypeError(f"{self.object_id} is a package, not a Move object")
        return self.contents


@dataclass(frozen=True)
class StoredEvent:
    tx_digest: str
    event_seq: int
    package_id: str
    module: str
    sender: str
    type: str
    contents: Struct
    timestamp_ms: int


@dataclass(frozen=True)
class StoredTransaction:
    digest: str
    sender: str
    timestamp_ms: int
    object_changes: tuple[dict, ...]
    recipients: tuple[str, ...]  # addresses that received or got objects: the ToAddress filter
    gas_object: str | None = None  # the gas coin of an executed transaction (seeded changes pay no gas)


def _encode_object(item: StoredObject) -> dict:
    raw = dict(item.__dict__)
    raw["contents"] = None if item.contents is None else move_values.to_storage(item.contents)
    return raw


def _decode_object(raw: dict) -> StoredObject:
    contents = None if raw["contents"] is None else move_values.from_storage(raw["contents"])
    return StoredObject(**{**raw, "contents": contents})


def _encode_event(item: StoredEvent) -> dict:
    return {**item.__dict__, "contents": move_values.to_storage(item.contents)}


def _decode_event(raw: dict) -> StoredEvent:
    return StoredEvent(**{**raw, "contents": move_values.from_storage(raw["contents"])})


def _encode_transaction(item: StoredTransaction) -> dict:
    return {**item.__dict__, "object_changes": list(item.object_changes), "recipients": list(item.recipients)}


def _decode_transaction(raw: dict) -> StoredTransaction:
    return StoredTransaction(**{**raw, "object_changes": tuple(raw["object_changes"]), "recipients": tuple(raw["recipients"])})


class ObjectStore:
    """The localnet chain state; ``localnet.world.World`` adds the Move behaviour on top."""

    def __init__(
        self,
        state_path: Path | str | None = None,
        *,
        clock: Callable[[], float] = time.time,
        rng: Callable[[int], bytes] = os.urandom,
        reference_gas_price: int = 1000,
        indexing_lag_seconds: float = 0.0,
        snapshot_every_transaction: bool = False,
    ) -> None:
        """``snapshot_every_transaction``: save as before the journal (the whole state per transaction), for
        benchmarks that compare against it; the journal is the default."""
        if indexing_lag_seconds < 0:
            raise ValueError("indexing lag cannot be negative")
        self.state_path = Path(state_path) if state_path is not None else None
        self.journal_path = self.state_path.with_name(self.state_path.name + ".journal") if self.state_path else None
        self.clock = clock
        self.rng = rng
        self.reference_gas_price = reference_gas_price
        self.indexing_lag_seconds = indexing_lag_seconds
        self.snapshot_every_transaction = snapshot_every_transaction
        self.epoch = 1
        self.lock = threading.RLock()
        self.objects: dict[str, StoredObject] = {}
        self.dynamic_fields: dict[str, list[str]] = {}  # parent id -> field object ids, insertion order
        self.events: list[StoredEvent] = []
        self.transactions: list[StoredTransaction] = []
        self.packages: dict[str, str] = {}  # "memwal" | "walrus" | "seal" -> package id
        self.registry_id: str | None = None
        self.last_version = 1  # version 1 is reserved for packages
        # Read-side bookkeeping (memory only): every version with the position of the transaction that
        # wrote it, each transaction's commit time, and where each digest sits.
        self.history: dict[str, list[tuple[int, StoredObject]]] = {}
        self.commit_times: list[float] = []
        self.transaction_positions: dict[str, int] = {}
        if self.state_path is not None and (self.state_path.exists() or self._journal_exists()):
            self._load()
            self.save()  # fold the journal into the snapshot: every start begins with an empty journal

    # ---- persistence -------------------------------------------------------------------------
    def _journal_exists(self) -> bool:
        return self.journal_path is not None and self.journal_path.exists() and self.journal_path.stat().st_size > 0

    def _load(self) -> None:
        if self.state_path is None:
            return
        if self.state_path.exists():
            self._load_snapshot()
        self._replay_journal()
        self.history = {object_id: [(_LOADED, item)] for object_id, item in self.objects.items()}
        self.commit_times = [float("-inf")] * len(self.transactions)
        self.transaction_positions = {tx.digest: position for position, tx in enumerate(self.transactions)}

    def _load_snapshot(self) -> None:
        assert self.state_path is not None
        if self.state_path.stat().st_size > MAX_STATE_BYTES:
            raise ValueError("localnet state file exceeds the size cap")
        raw = json.loads(self.state_path.read_text("utf-8"))
        if raw.get("format") == 1:
            raw = _migrate_from_format_1(raw)
        if raw.get("format") != STATE_FORMAT:
            raise ValueError("unknown localnet state format")
        self.objects = {item["object_id"]: _decode_object(item) for item in raw["objects"]}
        self.dynamic_fields = {parent: list(ids) for parent, ids in raw["dynamic_fields"].items()}
        self.events = [_decode_event(item) for item in raw["events"]]
        self.transactions = [_decode_transaction(item) for item in raw["transactions"]]
        self.packages = dict(raw["packages"])
        self.registry_id = raw["registry_id"]
        self.last_version = raw["last_version"]
        self.epoch = raw["epoch"]

    def _replay_journal(self) -> None:
        if not self._journal_exists():
            return
        assert self.journal_path is not None
        if self.journal_path.stat().st_size > MAX_JOURNAL_BYTES + MAX_JOURNAL_LINE_BYTES:
            raise ValueError("localnet journal exceeds the size cap")
        with open(self.journal_path, "rb") as handle:
            for line in handle:
                if not line.endswith(b"\n"):
                    break  # torn by a crash mid-write: that transaction never returned to its sender
                entry = json.loads(line)
                if entry["position"] < len(self.transactions):
                    continue  # already in the snapshot
                if entry["position"] != len(self.transactions):
                    raise ValueError("localnet journal skips a transaction")
                self._apply_entry(entry)

    def _apply_entry(self, entry: dict) -> None:
        for raw in entry["objects"]:
            item = _decode_object(raw)
            self.objects[item.object_id] = item
        for parent, field_id in entry["fields"]:
            self.dynamic_fields.setdefault(parent, []).append(field_id)
        self.events.extend(_decode_event(raw) for raw in entry["events"])
        self.transactions.append(_decode_transaction(entry["transaction"]))
        self.packages = dict(entry["packages"])
        self.registry_id = entry["registry_id"]
        self.last_version = entry["last_version"]
        self.epoch = entry["epoch"]

    def _append_to_journal(self, builder: TransactionBuilder, first_event: int) -> None:
        """One transaction as one flushed line: what it changed, and where it sits in the history."""
        if self.journal_path is None:
            return
        if self.snapshot_every_transaction:
            self.save()
            return
        entry = {
            "position": len(self.transactions) - 1,
            "objects": [_encode_object(self.objects[object_id]) for object_id in builder.changes],
            "fields": builder.new_fields,
            "events": [_encode_event(item) for item in self.events[first_event:]],
            "transaction": _encode_transaction(self.transactions[-1]),
            "packages": self.packages, "registry_id": self.registry_id, "last_version": self.last_version,
            "epoch": self.epoch,
        }
        line = json.dumps(entry, separators=(",", ":")).encode("utf-8") + b"\n"
        self.journal_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.journal_path, "ab") as journal:  # closed (in the kernel) before the transaction returns
            journal.write(line)
            size = journal.tell()
        if size > MAX_JOURNAL_BYTES:
            self.save()

    def save(self) -> None:
        """Write the whole state as a snapshot, then empty the journal it now holds."""
        if self.state_path is None:
            return
        with self.lock:
            raw = {
                "format": STATE_FORMAT,
                "objects": [_encode_object(item) for item in self.objects.values()],
                "dynamic_fields": self.dynamic_fields,
                "events": [_encode_event(item) for item in self.events],
                "transactions": [_encode_transaction(item) for item in self.transactions],
                "packages": self.packages,
                "registry_id": self.registry_id,
                "last_version": self.last_version,
                "epoch": self.epoch,
            }
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.state_path.with_name(self.state_path.name + ".tmp")
            temporary.write_text(json.dumps(raw, separators=(",", ":")), "utf-8")
            os.replace(temporary, self.state_path)
            assert self.journal_path is not None
            if self.journal_path.exists():
                self.journal_path.write_bytes(b"")

    # ---- primitives used by localnet.move and localnet.execution ------------------------------
    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def new_id(self) -> str:
        return "0x" + self.rng(32).hex()

    @contextmanager
    def transaction(self, sender: str, *, digest: str | None = None,
                    gas_object: str | None = None) -> Iterator[TransactionBuilder]:
        """Run one state change as a transaction: one version, one digest, saved when it succeeds."""
        with self.lock:
            first_event = len(self.events)
            builder = TransactionBuilder(self, normalize_address(sender), digest, gas_object)
            try:
                yield builder
            except BaseException:
                builder.roll_back(first_event)  # all or nothing, like a transaction that aborts
                raise
            builder.commit()
            self._append_to_journal(builder, first_event)

    def get(self, object_id: str) -> StoredObject | None:
        try:
            return self.objects.get(normalize_address(object_id))
        except ValueError:
            return None

    def fields_of(self, parent_id: str) -> list[StoredObject]:
        with self.lock:
            return [self.objects[field_id] for field_id in self.dynamic_fields.get(normalize_address(parent_id), [])]

    def find_field(self, parent_id: str, name_type: str, name_bcs: bytes) -> StoredObject | None:
        try:
            found = self.objects.get(dynamic_field_id(parent_id, name_type, name_bcs))
        except ValueError:
            return None
        return found if found is not None and found.name_type == name_type else None

    def owned_by(self, owner: str, type_prefix: str | None = None) -> list[StoredObject]:
        with self.lock:
            return _owned(self.objects.values(), normalize_address(owner), type_prefix)

    # ---- the lagging read side ----------------------------------------------------------------
    def indexed_transaction_count(self) -> int:
        """How many transactions the read side has indexed: those committed ``indexing_lag_seconds`` ago."""
        with self.lock:
            if self.indexing_lag_seconds <= 0:
                return len(self.transactions)
            return bisect.bisect_right(self.commit_times, self.clock() - self.indexing_lag_seconds)

    def read_view(self) -> ReadView:
        """The state the GraphQL and gRPC read side serves right now."""
        with self.lock:
            return ReadView(self, self.indexed_transaction_count())

    def record_commit(self, builder: TransactionBuilder) -> None:
        """Called by ``TransactionBuilder.commit``: remember the new versions for the read side."""
        position = len(self.transactions) - 1
        self.commit_times.append(self.clock())
        self.transaction_positions[builder.digest] = position
        for object_id in builder.changes:
            self.history.setdefault(object_id, []).append((position, self.objects[object_id]))


class ReadView:
    """The chain as an index that has seen the first ``indexed`` transactions shows it (read-only)."""

    def __init__(self, store: ObjectStore, indexed: int) -> None:
        self.store = store
        self.indexed = indexed

    def get(self, object_id: str) -> StoredObject | None:
        return self.state_at(object_id, self.indexed - 1)

    def state_at(self, object_id: str, position: int) -> StoredObject | None:
        """The object as the transaction at ``position`` left it (after a restart only the loaded state is
        kept: the newest); None if it did not exist yet or the id is malformed."""
        try:
            object_id = normalize_address(object_id)
        except ValueError:
            return None
        visible = None
        for written_at, item in self.store.history.get(object_id, ()):
            if written_at > position:
                break
            visible = item
        return visible

    def fields_of(self, parent_id: str) -> list[StoredObject]:
        with self.store.lock:
            field_ids = list(self.store.dynamic_fields.get(normalize_address(parent_id), []))
        return [item for item in map(self.get, field_ids) if item is not None]

    def find_field(self, parent_id: str, name_type: str, name_bcs: bytes) -> StoredObject | None:
        return self.get(dynamic_field_id(parent_id, name_type, name_bcs))

    def owned_by(self, owner: str, type_prefix: str | None = None) -> list[StoredObject]:
        with self.store.lock:
            object_ids = list(self.store.history)
        visible = [item for item in map(self.get, object_ids) if item is not None]
        return _owned(visible, normalize_address(owner), type_prefix)

    def is_indexed(self, digest: str) -> bool:
        position = self.store.transaction_positions.get(digest)
        return position is not None and position < self.indexed

    def checkpoint_of(self, digest: str) -> int | None:
        """Each localnet transaction is its own checkpoint: sequence number = position + 1."""
        return self.store.transaction_positions[digest] + 1 if self.is_indexed(digest) else None

    @property
    def events(self) -> list[StoredEvent]:
        with self.store.lock:
            return [event for event in self.store.events if self.is_indexed(event.tx_digest)]

    @property
    def transactions(self) -> list[StoredTransaction]:
        with self.store.lock:
            return self.store.transactions[: self.indexed]


class TransactionBuilder:
    """Collects one transaction's writes; ``commit`` gives them a common version and digest."""

    def __init__(self, world: ObjectStore, sender: str, digest: str | None = None, gas_object: str | None = None) -> None:
        self.world = world
        self.gas_object = gas_object
        self.sender = sender
        self.version = world.last_version + 1
        # seeded state changes have no TransactionData, so they get a random digest
        self.digest = digest or b58encode(hashlib.blake2b(world.rng(32) + sender.encode(), digest_size=32).digest())
        self.changes: dict[str, dict] = {}
        self.recipients: list[str] = []
        self.event_count = 0
        self.new_fields: list[tuple[str, str]] = []  # (parent id, field id), in the order they were added
        self._before: dict[str, StoredObject | None] = {}  # each touched object as it was: the undo log

    def _write(self, item: StoredObject) -> None:
        if item.object_id not in self._before:
            self._before[item.object_id] = self.world.objects.get(item.object_id)
        self.world.objects[item.object_id] = item

    def roll_back(self, first_event: int) -> None:
        for object_id, before in self._before.items():
            if before is None:
                self.world.objects.pop(object_id, None)
            else:
                self.world.objects[object_id] = before
        for parent, _ in reversed(self.new_fields):
            fields = self.world.dynamic_fields[parent]
            fields.pop()
            if not fields:
                del self.world.dynamic_fields[parent]
        del self.world.events[first_event:]

    def _object_digest(self, object_id: str) -> str:
        material = f"{object_id}:{self.version}:{self.digest}".encode()
        return b58encode(hashlib.blake2b(material, digest_size=32).digest())

    def create(self, type_name: str, fields: dict[str, MoveValue], owner: object, *, object_id: str | None = None,
               name_type: str | None = None, version: int | None = None) -> StoredObject:
        object_id = object_id or self.world.new_id()
        contents = Struct(type_name, {"id": Uid(object_id), **fields}) if type_name != "package" else None
        item = StoredObject(object_id, version or self.version, self._object_digest(object_id), owner, type_name,
                            contents, self.digest, name_type)
        self._write(item)
        self._change("created" if type_name != "package" else "published", item)
        return item

    def update(self, item: StoredObject, *, fields: dict[str, MoveValue] | None = None, owner: object = None) -> StoredObject:
        contents = item.contents
        if fields is not None and contents is not None:
            contents = Struct(contents.type, {**contents.fields, **fields})
        updated = replace(item, version=self.version, digest=self._object_digest(item.object_id), contents=contents,
                          owner=owner if owner is not None else item.owner, previous_transaction=self.digest)
        self._write(updated)
        kind = "transferred" if owner is not None and owner != item.owner else "mutated"
        self._change(kind, updated)
        return updated

    def add_field(self, parent_id: str, name_type: str, name: MoveValue, value_type: str, value: MoveValue) -> StoredObject:
        field_id = dynamic_field_id(parent_id, name_type, move_values.name_bcs(name))
        item = self.create(f"0x2::dynamic_field::Field<{name_type}, {value_type}>", {"name": name, "value": value},
                           {"ObjectOwner": parent_id}, object_id=field_id, name_type=name_type)
        self.world.dynamic_fields.setdefault(parent_id, []).append(field_id)
        self.new_fields.append((parent_id, field_id))
        return item

    def emit(self, package_id: str, module: str, event_name: str, fields: dict[str, MoveValue]) -> None:
        event_type = f"{package_id}::{module}::{event_name}"
        self.world.events.append(
            StoredEvent(self.digest, self.event_count, package_id, module, self.sender, event_type,
                        Struct(event_type, fields), self.world.now_ms())
        )
        self.event_count += 1

    def _change(self, kind: str, item: StoredObject) -> None:
        previous = self.changes.get(item.object_id)
        if previous is not None and _CHANGE_PRIORITY[previous["type"]] > _CHANGE_PRIORITY[kind]:
            kind = previous["type"]  # created stays created, a transfer stays a transfer
        change: dict[str, object] = {"type": kind, "sender": self.sender, "objectType": item.type, "objectId": item.object_id,
                  "version": str(item.version), "digest": item.digest}
        if kind == "transferred":
            change["recipient"] = item.owner
        elif kind != "published":
            change["owner"] = item.owner
        self.changes[item.object_id] = change
        if kind in ("created", "transferred") and item.owner_address() is not None:
            self.recipients.append(item.owner_address())  # type: ignore[arg-type]

    def commit(self) -> None:
        self.world.last_version = self.version
        self.world.transactions.append(
            StoredTransaction(self.digest, self.sender, self.world.now_ms(), tuple(self.changes.values()),
                              tuple(dict.fromkeys(self.recipients)), self.gas_object)
        )
        self.world.record_commit(self)


_CHANGE_PRIORITY = {"mutated": 0, "transferred": 1, "created": 2, "published": 3}


def _owned(items: Iterable[StoredObject], owner: str, type_prefix: str | None) -> list[StoredObject]:
    return [
        item for item in items
        if item.owner_address() == owner and (type_prefix is None or _type_matches(item.type, type_prefix))
    ]


def _migrate_from_format_1(raw: dict) -> dict:
    """Format 1 put dynamic fields at ad-hoc ids; move them to Sui's derived ids (what gRPC clients compute)."""
    objects = {item["object_id"]: item for item in raw["objects"]}
    renamed: dict[str, str] = {}
    for parent, field_ids in raw["dynamic_fields"].items():
        for field_id in field_ids:
            item = objects[field_id]
            name = move_values.from_storage(item["contents"]["fields"]["name"])
            renamed[field_id] = dynamic_field_id(parent, item["name_type"], move_values.name_bcs(name))
    migrated = []
    for item in raw["objects"]:
        new_id = renamed.get(item["object_id"])
        if new_id is not None:
            item = {**item, "object_id": new_id,
                    "contents": {**item["contents"], "fields": {**item["contents"]["fields"], "id": {"$uid": new_id}}}}
        migrated.append(item)
    dynamic_fields = {parent: [renamed[field_id] for field_id in ids] for parent, ids in raw["dynamic_fields"].items()}
    return {**raw, "format": STATE_FORMAT, "objects": migrated, "dynamic_fields": dynamic_fields}


def _type_matches(type_name: str, wanted: str) -> bool:
    """GraphQL/JSON-RPC type filters: a full type, or a type without its type arguments."""
    actual = normalize_type(type_name)
    wanted = normalize_type(wanted)
    return actual == wanted or actual.split("<", 1)[0] == wanted
