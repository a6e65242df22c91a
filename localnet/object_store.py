"""The localnet's Sui state: objects, dynamic fields, events and transactions, stored and queried.

State survives restarts: every change is written to a JSON state file (temp file + rename, so a crash
never leaves half a file). One lock guards everything, because the JSON-RPC, GraphQL and Walrus
stand-ins share one store. Versions follow Sui's Lamport rule: every transaction writes its objects
at one new version, higher than any version before it. The Move behaviour (MemWal accounts, Walrus
blobs, Seal key servers, coins) lives in ``localnet.move``, transaction execution in ``localnet.execution``,
and ``localnet.world.World`` puts the three together; this module only stores and queries.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from chain.address import normalize_address
from chain.base58 import b58encode
from chain.move_json import normalize_type
from localnet import move_values
from localnet.move_values import MoveValue, Struct, Uid

STATE_FORMAT = 1
MAX_STATE_BYTES = 256 * 1024 * 1024


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


def _encode_object(item: StoredObject) -> dict:
    raw = dict(item.__dict__)
    raw["contents"] = None if item.contents is None else move_values.to_storage(item.contents)
    return raw


def _decode_object(raw: dict) -> StoredObject:
    contents = None if raw["contents"] is None else move_values.from_storage(raw["contents"])
    return StoredObject(**{**raw, "contents": contents})


class ObjectStore:
    """The localnet chain state; ``localnet.world.World`` adds the Move behaviour on top."""

    def __init__(
        self,
        state_path: Path | str | None = None,
        *,
        clock: Callable[[], float] = time.time,
        rng: Callable[[int], bytes] = os.urandom,
        reference_gas_price: int = 1000,
    ) -> None:
        self.state_path = Path(state_path) if state_path is not None else None
        self.clock = clock
        self.rng = rng
        self.reference_gas_price = reference_gas_price
        self.epoch = 1
        self.lock = threading.RLock()
        self.objects: dict[str, StoredObject] = {}
        self.dynamic_fields: dict[str, list[str]] = {}  # parent id -> field object ids, insertion order
        self.events: list[StoredEvent] = []
        self.transactions: list[StoredTransaction] = []
        self.packages: dict[str, str] = {}  # "memwal" | "walrus" | "seal" -> package id
        self.registry_id: str | None = None
        self.last_version = 1  # version 1 is reserved for packages
        if self.state_path is not None and self.state_path.exists():
            self._load()

    # ---- persistence -------------------------------------------------------------------------
    def _load(self) -> None:
        if self.state_path is None:
            return
        if self.state_path.stat().st_size > MAX_STATE_BYTES:
            raise ValueError("localnet state file exceeds the size cap")
        raw = json.loads(self.state_path.read_text("utf-8"))
        if raw.get("format") != STATE_FORMAT:
            raise ValueError("unknown localnet state format")
        self.objects = {item["object_id"]: _decode_object(item) for item in raw["objects"]}
        self.dynamic_fields = {parent: list(ids) for parent, ids in raw["dynamic_fields"].items()}
        self.events = [
            StoredEvent(**{**item, "contents": move_values.from_storage(item["contents"])}) for item in raw["events"]
        ]
        self.transactions = [
            StoredTransaction(**{**item, "object_changes": tuple(item["object_changes"]), "recipients": tuple(item["recipients"])})
            for item in raw["transactions"]
        ]
        self.packages = dict(raw["packages"])
        self.registry_id = raw["registry_id"]
        self.last_version = raw["last_version"]
        self.epoch = raw["epoch"]

    def save(self) -> None:
        if self.state_path is None:
            return
        with self.lock:
            raw = {
                "format": STATE_FORMAT,
                "objects": [_encode_object(item) for item in self.objects.values()],
                "dynamic_fields": self.dynamic_fields,
                "events": [{**item.__dict__, "contents": move_values.to_storage(item.contents)} for item in self.events],
                "transactions": [
                    {**item.__dict__, "object_changes": list(item.object_changes), "recipients": list(item.recipients)}
                    for item in self.transactions
                ],
                "packages": self.packages,
                "registry_id": self.registry_id,
                "last_version": self.last_version,
                "epoch": self.epoch,
            }
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.state_path.with_name(self.state_path.name + ".tmp")
            temporary.write_text(json.dumps(raw, separators=(",", ":")), "utf-8")
            os.replace(temporary, self.state_path)

    # ---- primitives used by localnet.move and localnet.execution ------------------------------
    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def new_id(self) -> str:
        return "0x" + self.rng(32).hex()

    @contextmanager
    def transaction(self, sender: str, *, digest: str | None = None) -> Iterator[TransactionBuilder]:
        """Run one state change as a transaction: one version, one digest, saved when it succeeds."""
        with self.lock:
            snapshot = (dict(self.objects), {key: list(ids) for key, ids in self.dynamic_fields.items()}, len(self.events))
            builder = TransactionBuilder(self, normalize_address(sender), digest)
            try:
                yield builder
            except BaseException:
                # all or nothing, like a transaction that aborts
                self.objects, self.dynamic_fields = snapshot[0], snapshot[1]
                del self.events[snapshot[2]:]
                raise
            builder.commit()
            self.save()

    def get(self, object_id: str) -> StoredObject | None:
        try:
            return self.objects.get(normalize_address(object_id))
        except ValueError:
            return None

    def fields_of(self, parent_id: str) -> list[StoredObject]:
        with self.lock:
            return [self.objects[field_id] for field_id in self.dynamic_fields.get(normalize_address(parent_id), [])]

    def find_field(self, parent_id: str, name_type: str, name_bcs: bytes) -> StoredObject | None:
        for item in self.fields_of(parent_id):
            if item.name_type == name_type and move_values.name_bcs(item.contents.fields["name"]) == name_bcs:  # type: ignore[union-attr]
                return item
        return None

    def owned_by(self, owner: str, type_prefix: str | None = None) -> list[StoredObject]:
        owner = normalize_address(owner)
        with self.lock:
            return [
                item
                for item in self.objects.values()
                if item.owner_address() == owner and (type_prefix is None or _type_matches(item.type, type_prefix))
            ]


class TransactionBuilder:
    """Collects one transaction's writes; ``commit`` gives them a common version and digest."""

    def __init__(self, world: ObjectStore, sender: str, digest: str | None = None) -> None:
        self.world = world
        self.sender = sender
        self.version = world.last_version + 1
        # seeded state changes have no TransactionData, so they get a random digest
        self.digest = digest or b58encode(hashlib.blake2b(world.rng(32) + sender.encode(), digest_size=32).digest())
        self.changes: dict[str, dict] = {}
        self.recipients: list[str] = []
        self.event_count = 0

    def _object_digest(self, object_id: str) -> str:
        material = f"{object_id}:{self.version}:{self.digest}".encode()
        return b58encode(hashlib.blake2b(material, digest_size=32).digest())

    def create(self, type_name: str, fields: dict[str, MoveValue], owner: object, *, object_id: str | None = None,
               name_type: str | None = None, version: int | None = None) -> StoredObject:
        object_id = object_id or self.world.new_id()
        contents = Struct(type_name, {"id": Uid(object_id), **fields}) if type_name != "package" else None
        item = StoredObject(object_id, version or self.version, self._object_digest(object_id), owner, type_name,
                            contents, self.digest, name_type)
        self.world.objects[object_id] = item
        self._change("created" if type_name != "package" else "published", item)
        return item

    def update(self, item: StoredObject, *, fields: dict[str, MoveValue] | None = None, owner: object = None) -> StoredObject:
        contents = item.contents
        if fields is not None and contents is not None:
            contents = Struct(contents.type, {**contents.fields, **fields})
        updated = replace(item, version=self.version, digest=self._object_digest(item.object_id), contents=contents,
                          owner=owner if owner is not None else item.owner, previous_transaction=self.digest)
        self.world.objects[item.object_id] = updated
        kind = "transferred" if owner is not None and owner != item.owner else "mutated"
        self._change(kind, updated)
        return updated

    def add_field(self, parent_id: str, name_type: str, name: MoveValue, value_type: str, value: MoveValue) -> StoredObject:
        name_bytes = move_values.name_bcs(name)
        material = b"\xf0" + bytes.fromhex(parent_id[2:]) + name_type.encode() + name_bytes
        field_id = "0x" + hashlib.blake2b(material, digest_size=32).hexdigest()
        item = self.create(f"0x2::dynamic_field::Field<{name_type}, {value_type}>", {"name": name, "value": value},
                           {"ObjectOwner": parent_id}, object_id=field_id, name_type=name_type)
        self.world.dynamic_fields.setdefault(parent_id, []).append(field_id)
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
            StoredTransaction(self.digest, self.sender, self.world.now_ms(), tuple(self.changes.values()), tuple(dict.fromkeys(self.recipients)))
        )


_CHANGE_PRIORITY = {"mutated": 0, "transferred": 1, "created": 2, "published": 3}


def _type_matches(type_name: str, wanted: str) -> bool:
    """GraphQL/JSON-RPC type filters: a full type, or a type without its type arguments."""
    actual = normalize_type(type_name)
    wanted = normalize_type(wanted)
    return actual == wanted or actual.split("<", 1)[0] == wanted
