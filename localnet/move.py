"""Seeding that behaves like the Move code the localnet stands in for.

- ``memwal::account`` (spec: MemWal ``account.move``): one shared ``AccountRegistry`` with a
  ``Table<address, ID>``; shared ``MemWalAccount`` objects; the ``version`` dynamic field (value 2) on
  both; the events ``AccountCreated``, ``DelegateKeyAdded``, ``DelegateKeyRemoved``,
  ``AccountDeactivated``/``AccountReactivated``; the same limits and abort codes.
- ``walrus::blob`` Blob objects (``blob_id`` u256, ``storage`` struct) and their ``metadata`` field.
- ``seal::key_server`` KeyServer objects (spec: Seal ``move/seal/sources/key_server.move``): the V1
  record under dynamic field ``1u64`` (``create_and_transfer_v1``), the V2 record under ``2u64`` for
  ``create_and_transfer_v2_independent_server`` and ``create_committee_v2``, ``upgrade_v1_to_independent_v2``
  (both records) and ``update`` (a new URL for independent servers).
- ``0x2::coin::Coin<0x2::sui::SUI>`` gas coins.
"""

from __future__ import annotations

from chain.address import normalize_address, sui_address
from chain.reader import blob_id_to_u256
from localnet.move_values import U64, U256, Address, MoveValue, Struct, Uid, Variant, as_struct, name_bcs
from localnet.object_store import MoveAbort, ObjectStore, StoredObject, TransactionBuilder

MAX_DELEGATE_KEYS = 20
MAX_LABEL_BYTES = 64
MEMWAL_VERSION = 2
SUI_COIN_TYPE = "0x2::coin::Coin<0x2::sui::SUI>"
METADATA_NAME = b"metadata"
ENCODING_TYPES = {"RedStuff": 0, "RS2": 1}
LOCALNET_OPERATOR = "0x" + "5e" * 32  # stands in for whoever published packages and runs key servers

# abort codes of memwal::account
E_NOT_OWNER = 0
E_KEY_ALREADY_EXISTS = 1
E_KEY_NOT_FOUND = 2
E_TOO_MANY_KEYS = 3
E_INVALID_PUBLIC_KEY = 4
E_ACCOUNT_ALREADY_EXISTS = 5
E_ACCOUNT_DEACTIVATED = 6
E_LABEL_TOO_LONG = 8


def publish_package(world: ObjectStore, name: str) -> str:
    with world.lock:
        if name in world.packages:
            return world.packages[name]
        with world.transaction(LOCALNET_OPERATOR) as tx:
            package = tx.create("package", {}, "Immutable", version=1)  # a fresh package is at version 1
            world.packages[name] = package.object_id
        return package.object_id


def _package(world: ObjectStore, name: str) -> str:
    return world.packages.get(name) or publish_package(world, name)


def create_registry(world: ObjectStore) -> str:
    with world.lock:
        if world.registry_id is not None:
            return world.registry_id
        package = _package(world, "memwal")
        with world.transaction(LOCALNET_OPERATOR) as tx:
            table = Struct("0x2::table::Table<address, 0x2::object::ID>", {"id": Uid(world.new_id()), "size": U64(0)})
            registry = tx.create(f"{package}::account::AccountRegistry", {"accounts": table}, _shared(tx))
            tx.add_field(registry.object_id, "vector<u8>", b"version", "u64", U64(MEMWAL_VERSION))
            world.registry_id = registry.object_id
        return registry.object_id


def _shared(tx: TransactionBuilder) -> dict[str, object]:
    """A new shared object records the version it was shared at."""
    return {"Shared": {"initial_shared_version": tx.version}}


def _account(world: ObjectStore, account_id: str) -> StoredObject:
    account = world.get(account_id)
    if account is None or account.contents is None or not account.type.endswith("::account::MemWalAccount"):
        raise MoveAbort("account", 0, f"no MemWalAccount {account_id}")
    return account


def create_account(world: ObjectStore, owner: str) -> str:
    owner = normalize_address(owner)
    with world.lock:
        registry = _existing(world, create_registry(world))
        table = registry.struct.struct("accounts")
        table_id = table.address("id")
        if any(item.struct.fields["name"] == Address(owner) for item in world.fields_of(table_id)):
            raise MoveAbort("account::create_account", E_ACCOUNT_ALREADY_EXISTS, "owner already has an account")
        package = world.packages["memwal"]
        with world.transaction(owner) as tx:
            account = tx.create(
                f"{package}::account::MemWalAccount",
                {"owner": Address(owner), "delegate_keys": [], "created_at": U64(world.now_ms()), "active": True},
                _shared(tx),
            )
            tx.add_field(account.object_id, "vector<u8>", b"version", "u64", U64(MEMWAL_VERSION))
            tx.add_field(table_id, "address", Address(owner), "0x2::object::ID", Address(account.object_id))
            size = table.number("size") + 1
            tx.update(registry, fields={"accounts": Struct(table.type, {**table.fields, "size": U64(size)})})
            tx.emit(package, "account", "AccountCreated", {"account_id": Address(account.object_id), "owner": Address(owner)})
        return account.object_id


def add_delegate_key(world: ObjectStore, account_id: str, public_key: bytes, label: str) -> None:
    with world.lock:
        account = _account(world, account_id)
        fields = account.struct.fields
        if not fields["active"]:
            raise MoveAbort("account::add_delegate_key", E_ACCOUNT_DEACTIVATED, "account is deactivated")
        if len(public_key) != 32:
            raise MoveAbort("account::add_delegate_key", E_INVALID_PUBLIC_KEY, "public key must be 32 bytes")
        if len(label.encode("utf-8")) > MAX_LABEL_BYTES:
            raise MoveAbort("account::add_delegate_key", E_LABEL_TOO_LONG, "label longer than 64 bytes")
        keys = [as_struct(key) for key in account.struct.vector("delegate_keys")]
        if len(keys) >= MAX_DELEGATE_KEYS:
            raise MoveAbort("account::add_delegate_key", E_TOO_MANY_KEYS, "at most 20 delegate keys")
        if any(key.fields["public_key"] == bytes(public_key) for key in keys):
            raise MoveAbort("account::add_delegate_key", E_KEY_ALREADY_EXISTS, "delegate key already present")
        package = world.packages["memwal"]
        address = Address(sui_address(bytes(public_key)))
        key = Struct(f"{package}::account::DelegateKey", {
            "public_key": bytes(public_key), "sui_address": address, "label": label, "created_at": U64(world.now_ms())})
        owner = account.struct.address("owner")
        with world.transaction(owner) as tx:
            tx.update(account, fields={"delegate_keys": [*keys, key]})
            tx.emit(package, "account", "DelegateKeyAdded", {
                "account_id": Address(account.object_id), "public_key": bytes(public_key), "sui_address": address, "label": label})


def remove_delegate_key(world: ObjectStore, account_id: str, public_key: bytes) -> None:
    with world.lock:
        account = _account(world, account_id)
        keys = [as_struct(key) for key in account.struct.vector("delegate_keys")]
        remaining = [key for key in keys if key.fields["public_key"] != bytes(public_key)]
        if len(remaining) == len(keys):
            raise MoveAbort("account::remove_delegate_key", E_KEY_NOT_FOUND, "no such delegate key")
        removed = next(key for key in keys if key.fields["public_key"] == bytes(public_key))
        package = world.packages["memwal"]
        with world.transaction(account.struct.address("owner")) as tx:
            tx.update(account, fields={"delegate_keys": list(remaining)})
            tx.emit(package, "account", "DelegateKeyRemoved", {
                "account_id": Address(account.object_id), "public_key": bytes(public_key),
                "sui_address": removed.fields["sui_address"]})


def set_active(world: ObjectStore, account_id: str, active: bool) -> None:
    with world.lock:
        account = _account(world, account_id)
        owner = account.struct.fields["owner"]
        if account.struct.fields["active"] == active:
            raise MoveAbort("account::set_active", E_ACCOUNT_DEACTIVATED, f"account already {'active' if active else 'inactive'}")
        package = world.packages["memwal"]
        with world.transaction(account.struct.address("owner")) as tx:
            tx.update(account, fields={"active": bool(active)})
            name = "AccountReactivated" if active else "AccountDeactivated"
            tx.emit(package, "account", name, {"account_id": Address(account.object_id), "owner": owner})


def create_blob_object(world: ObjectStore, blob_id_b64url: str, size: int, owner: str, encoding_type: str, end_epoch: int,
                       deletable: bool = True) -> str:
    if encoding_type not in ENCODING_TYPES:
        raise ValueError(f"unknown Walrus encoding type {encoding_type!r}")
    blob_number = blob_id_to_u256(blob_id_b64url)
    with world.lock:
        package = _package(world, "walrus")
        storage = Struct(f"{package}::storage_resource::Storage", {
            "id": Uid(world.new_id()), "start_epoch": world.epoch, "end_epoch": int(end_epoch),
            "storage_size": U64(max(int(size), 1) * 5)})  # encoded size: a rough stand-in for RS2 overhead
        with world.transaction(LOCALNET_OPERATOR) as tx:
            blob = tx.create(f"{package}::blob::Blob", {
                "registered_epoch": world.epoch, "blob_id": U256(blob_number), "size": U64(int(size)),
                "encoding_type": ENCODING_TYPES[encoding_type], "certified_epoch": world.epoch,
                "storage": storage, "deletable": bool(deletable)}, {"AddressOwner": normalize_address(owner)})
        return blob.object_id


def insert_or_update_metadata_pair(world: ObjectStore, tx: TransactionBuilder, blob_id: str, key: str, value: str) -> None:
    """``walrus::blob::insert_or_update_metadata_pair``: creates the ``metadata`` field on first use."""
    package = world.packages["walrus"]
    blob = _existing(world, blob_id)
    metadata_type = f"{package}::metadata::Metadata"
    map_type = "0x2::vec_map::VecMap<0x1::string::String, 0x1::string::String>"
    entry_type = "0x2::vec_map::Entry<0x1::string::String, 0x1::string::String>"
    existing = world.find_field(blob_id, "vector<u8>", name_bcs(METADATA_NAME))
    stored = [] if existing is None else existing.struct.struct("value").struct("metadata").vector("contents")
    entries: list[MoveValue] = [entry for entry in stored if as_struct(entry).fields["key"] != key]
    entries.append(Struct(entry_type, {"key": key, "value": value}))
    metadata = Struct(metadata_type, {"metadata": Struct(map_type, {"contents": entries})})
    if existing is None:
        tx.add_field(blob.object_id, "vector<u8>", METADATA_NAME, metadata_type, metadata)
    else:
        tx.update(existing, fields={"value": metadata})
    tx.update(_existing(world, blob_id))


def _existing(world: ObjectStore, object_id: str) -> StoredObject:
    found = world.get(object_id)
    if found is None:
        raise MoveAbort("object", 0, f"no object {object_id}")
    return found


G2_POINT_BYTES = 96
KEY_TYPE_BF_BLS12381 = 0
# abort codes of seal::key_server
E_INVALID_VERSION = 2
E_INVALID_SERVER_TYPE = 3
E_INVALID_THRESHOLD = 4
E_INVALID_PARTY_ID = 5


def _check_g2(public_key: bytes) -> None:
    if len(public_key) != G2_POINT_BYTES:
        raise ValueError("a BF-IBE key server public key is a 96-byte G2 point")


def register_key_server(world: ObjectStore, name: str, url: str, public_key: bytes) -> str:
    """``create_and_transfer_v1`` (test-only upstream, but every pre-V2 server on chain looks like this)."""
    _check_g2(public_key)
    with world.lock:
        package = _package(world, "seal")
        with world.transaction(LOCALNET_OPERATOR) as tx:
            server = tx.create(f"{package}::key_server::KeyServer", {"first_version": U64(1), "last_version": U64(1)},
                               {"AddressOwner": LOCALNET_OPERATOR})
            record = Struct(f"{package}::key_server::KeyServerV1",
                            {"name": name, "url": url, "key_type": KEY_TYPE_BF_BLS12381, "pk": bytes(public_key)})
            tx.add_field(server.object_id, "u64", U64(1), f"{package}::key_server::KeyServerV1", record)
        return server.object_id


def _v2_record(package: str, name: str, public_key: bytes, server_type: Variant) -> Struct:
    return Struct(f"{package}::key_server::KeyServerV2",
                  {"name": name, "key_type": KEY_TYPE_BF_BLS12381, "pk": bytes(public_key), "server_type": server_type})


def register_independent_v2_key_server(world: ObjectStore, name: str, url: str, public_key: bytes) -> str:
    """``create_and_transfer_v2_independent_server``: only the V2 record, ``Independent{url}``."""
    _check_g2(public_key)
    with world.lock:
        package = _package(world, "seal")
        with world.transaction(LOCALNET_OPERATOR) as tx:
            server = tx.create(f"{package}::key_server::KeyServer", {"first_version": U64(2), "last_version": U64(2)},
                               {"AddressOwner": LOCALNET_OPERATOR})
            independent = Variant(f"{package}::key_server::ServerType", "Independent", {"url": url})
            tx.add_field(server.object_id, "u64", U64(2), f"{package}::key_server::KeyServerV2",
                         _v2_record(package, name, public_key, independent))
        return server.object_id


def register_committee_key_server(world: ObjectStore, name: str, public_key: bytes, threshold: int,
                                  members: list[tuple[str, str, bytes]]) -> str:
    """``create_committee_v2``: ``members`` are ``(name, url, partial public key)`` in party-id order."""
    _check_g2(public_key)
    if not 1 < threshold <= len(members):  # validate_partial_key_servers: threshold > 1 and n >= threshold
        raise MoveAbort("key_server::create_committee_v2", E_INVALID_THRESHOLD, "need 1 < threshold <= members")
    with world.lock:
        package = _package(world, "seal")
        partials: list[MoveValue] = []
        for party_id, (member_name, url, partial_public_key) in enumerate(members):
            _check_g2(partial_public_key)
            partials.append(Struct(f"{package}::key_server::PartialKeyServer", {
                "name": member_name, "url": url, "partial_pk": bytes(partial_public_key), "party_id": party_id}))
        committee = Variant(f"{package}::key_server::ServerType", "Committee",
                            {"version": 0, "threshold": threshold, "partial_key_servers": partials})
        with world.transaction(LOCALNET_OPERATOR) as tx:
            server = tx.create(f"{package}::key_server::KeyServer", {"first_version": U64(2), "last_version": U64(2)},
                               {"AddressOwner": LOCALNET_OPERATOR})
            tx.add_field(server.object_id, "u64", U64(2), f"{package}::key_server::KeyServerV2",
                         _v2_record(package, name, public_key, committee))
        return server.object_id


def upgrade_to_independent_v2(world: ObjectStore, object_id: str) -> None:
    """``upgrade_v1_to_independent_v2``: add a V2 record copied from V1; both stay on chain."""
    with world.lock:
        server = _existing(world, object_id)
        package = world.packages["seal"]
        v1 = world.find_field(object_id, "u64", name_bcs(U64(1)))
        if v1 is None or world.find_field(object_id, "u64", name_bcs(U64(2))) is not None:
            raise MoveAbort("key_server::upgrade_v1_to_independent_v2", E_INVALID_VERSION, "not a V1-only server")
        record = v1.struct.struct("value")
        independent = Variant(f"{package}::key_server::ServerType", "Independent", {"url": record.fields["url"]})
        with world.transaction(LOCALNET_OPERATOR) as tx:
            tx.add_field(object_id, "u64", U64(2), f"{package}::key_server::KeyServerV2",
                         _v2_record(package, str(record.fields["name"]), bytes(record.fields["pk"]), independent))  # type: ignore[arg-type]
            tx.update(server, fields={"last_version": U64(2)})


def update_member_url(world: ObjectStore, object_id: str, party_id: int, url: str) -> None:
    """``key_server::update_member_url``: a committee member moved (the committee key is unchanged)."""
    with world.lock:
        v2 = world.find_field(object_id, "u64", name_bcs(U64(2)))
        value = None if v2 is None else v2.struct.struct("value")
        server_type = None if value is None else value.fields["server_type"]
        if v2 is None or value is None or not isinstance(server_type, Variant) or server_type.name != "Committee":
            raise MoveAbort("key_server::update_member_url", E_INVALID_SERVER_TYPE, "not a committee server")
        members = [as_struct(member) for member in server_type.fields["partial_key_servers"]]  # type: ignore[union-attr]
        if not 0 <= party_id < len(members):
            raise MoveAbort("key_server::update_member_url", E_INVALID_PARTY_ID, "no such party")
        if members[party_id].fields["url"] == url:
            return
        members[party_id] = Struct(members[party_id].type, {**members[party_id].fields, "url": url})
        moved = Variant(server_type.type, server_type.name, {**server_type.fields, "partial_key_servers": list(members)})
        with world.transaction(LOCALNET_OPERATOR) as tx:
            tx.update(v2, fields={"value": Struct(value.type, {**value.fields, "server_type": moved})})


def update_key_server_url(world: ObjectStore, object_id: str, url: str) -> None:
    """``key_server::update``: a new URL in the V2 ``Independent`` record and the V1 record, where present."""
    with world.lock:
        v1 = world.find_field(object_id, "u64", name_bcs(U64(1)))
        v2 = world.find_field(object_id, "u64", name_bcs(U64(2)))
        if v1 is None and v2 is None:
            raise MoveAbort("key_server::update", E_INVALID_VERSION, "no key server record")
        v2_value = None if v2 is None else v2.struct.struct("value")
        if v2_value is not None:
            server_type = v2_value.fields["server_type"]
            if not isinstance(server_type, Variant) or server_type.name != "Independent":
                raise MoveAbort("key_server::update", E_INVALID_SERVER_TYPE, "committee servers have no URL")
            if server_type.fields["url"] == url:
                return
            v2_value = Struct(v2_value.type, {**v2_value.fields, "server_type": Variant(server_type.type, server_type.name, {"url": url})})
        elif v1 is not None and v1.struct.struct("value").fields["url"] == url:
            return
        with world.transaction(LOCALNET_OPERATOR) as tx:
            if v1 is not None:
                value = v1.struct.struct("value")
                tx.update(v1, fields={"value": Struct(value.type, {**value.fields, "url": url})})
            if v2 is not None and v2_value is not None:
                tx.update(v2, fields={"value": v2_value})


def fund(world: ObjectStore, address: str, amount: int) -> str:
    if amount <= 0:
        raise ValueError("amount must be positive")
    with world.lock, world.transaction(LOCALNET_OPERATOR) as tx:
        coin = tx.create(SUI_COIN_TYPE, {"balance": U64(int(amount))}, {"AddressOwner": normalize_address(address)})
    return coin.object_id
