"""The localnet's Seal key servers: which on-chain records they get and which HTTP apps serve them.

- Independent servers, one per master key, each shaped like a different generation of Seal's Move
  code so every client path is exercised: server 0 has only a ``KeyServerV1`` record, server 1 was
  upgraded (V1 and V2 ``Independent``), servers 2+ are V2-only (``create_and_transfer_v2_independent_server``).
- One committee (``create_committee_v2``): the master key is Shamir-split t-of-n, each member a key
  server holding only its share, behind one aggregator that answers as one logical server.

Objects are reused across restarts (their URLs are updated, ports change) so old ciphertexts stay
decryptable; a new object is registered when the keys changed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette

from chain import bcs
from localnet.move_values import Variant, as_struct
from localnet.seal_aggregator import Committee, CommitteeMember, build_seal_aggregator_app, committee_lookup_from
from localnet.seal_server import AccountLookup, build_seal_server_app
from localnet.world import World
from sealcrypto import bls
from sealcrypto.committee import split_master_key
from sealcrypto.key_server_secret import KeyServerSecret

V2_FIELD_NAME = bcs.u64(2)


@dataclass(frozen=True)
class CommitteeKeys:
    master_key: bytes  # 32-byte scalar; only the localnet ever holds a whole committee key
    threshold: int
    shares: tuple[bytes, ...]  # party i's share, f(i + 1)

    @property
    def public_key(self) -> bytes:
        return KeyServerSecret.from_bytes(self.master_key).public_key

    def partial_public_key(self, party_id: int) -> bytes:
        return KeyServerSecret.from_bytes(self.shares[party_id]).public_key


@dataclass
class SealDeployment:
    apps: dict[str, Starlette]
    independent: list[dict[str, Any]]  # [{objectId, url, weight}]
    committee: dict[str, Any]  # {objectId, aggregatorUrl, threshold, members: [{partyId, url}]}


def independent_server_name(index: int) -> str:
    return f"seal-{index}"


def committee_member_name(party_id: int) -> str:
    return f"seal-committee-{party_id}"


COMMITTEE_AGGREGATOR_NAME = "seal-aggregator"


def deploy_seal(world: World, *, master_keys: Sequence[bytes], committee: CommitteeKeys, urls: Mapping[str, str],
                previous: Mapping[str, Any], account_lookup: AccountLookup, package_ids: Mapping[str, str],
                fixed_policy: bool, clock: Callable[[], float] = time.time) -> SealDeployment:
    apps: dict[str, Starlette] = {}
    independent = []
    known = previous.get("seal_key_servers", [])
    for index, master_key in enumerate(master_keys):
        secret = KeyServerSecret.from_bytes(master_key)
        url = urls[independent_server_name(index)]
        stored = known[index].get("objectId") if index < len(known) and isinstance(known[index], dict) else None
        object_id = _reuse(world, stored, secret.public_key)
        if object_id is not None:
            world.update_key_server_url(object_id, url)
        else:
            object_id = _register_independent(world, index, url, secret.public_key)
        apps[independent_server_name(index)] = build_seal_server_app(
            secret, object_id, account_lookup, clock=clock, fixed_policy=fixed_policy, package_ids=package_ids)
        independent.append({"objectId": object_id, "url": url, "weight": 1})

    member_urls = [urls[committee_member_name(party)] for party in range(len(committee.shares))]
    stored_committee = previous.get("seal_committee", {}).get("objectId") if isinstance(previous.get("seal_committee"), dict) else None
    committee_id = _reuse(world, stored_committee, committee.public_key)
    if committee_id is not None and committee_record(world, committee_id).threshold == committee.threshold:
        for party_id, url in enumerate(member_urls):
            world.update_committee_member_url(committee_id, party_id, url)
    else:
        members = [(f"localnet-member-{party}", url, committee.partial_public_key(party)) for party, url in enumerate(member_urls)]
        committee_id = world.register_committee_key_server("localnet-committee", committee.public_key,
                                                           committee.threshold, members)
    for party_id, share in enumerate(committee.shares):
        apps[committee_member_name(party_id)] = build_seal_server_app(
            KeyServerSecret.from_bytes(share), committee_id, account_lookup, clock=clock, fixed_policy=fixed_policy,
            package_ids=package_ids)
    final_id = committee_id
    apps[COMMITTEE_AGGREGATOR_NAME] = build_seal_aggregator_app(
        committee_lookup_from(lambda: committee_record(world, final_id)), package_ids)
    return SealDeployment(apps, independent, {
        "objectId": committee_id, "aggregatorUrl": urls[COMMITTEE_AGGREGATOR_NAME], "threshold": committee.threshold,
        "members": [{"partyId": party, "url": url} for party, url in enumerate(member_urls)],
    })


def _reuse(world: World, object_id: object, public_key: bytes) -> str | None:
    """The key server object of an earlier run that holds this public key, if the chain still has it.

    ``object_id`` (from the last localnet.json) is only a hint: the chain is the authority, so a missing or
    stale hint falls back to a search. Re-registering would give the same key a new object id, and every
    ciphertext naming the old id would become unreadable."""
    candidates = [object_id] if isinstance(object_id, str) else []
    candidates += sorted(oid for oid, item in world.objects.items() if item.type.endswith("::key_server::KeyServer"))
    for candidate in candidates:
        if _holds_key(world, candidate, public_key):
            return candidate
    return None


def _holds_key(world: World, object_id: str, public_key: bytes) -> bool:
    if world.get(object_id) is None:
        return False
    for key in (2, 1):
        record = world.find_field(object_id, "u64", bcs.u64(key))
        if record is not None:
            return bool(record.struct.struct("value").fields["pk"] == public_key)
    return False


def _register_independent(world: World, index: int, url: str, public_key: bytes) -> str:
    name = f"localnet-{index}"
    if index >= 2:
        return world.register_independent_v2_key_server(name, url, public_key)
    object_id = world.register_key_server(name, url, public_key)
    if index == 1:
        world.upgrade_key_server_to_v2(object_id)
    return object_id


def committee_record(world: World, object_id: str) -> Committee:
    """The committee as its on-chain ``KeyServerV2`` says (what an aggregator reads from chain)."""
    record = world.find_field(object_id, "u64", V2_FIELD_NAME)
    server_type = None if record is None else record.struct.struct("value").fields["server_type"]
    if not isinstance(server_type, Variant) or server_type.name != "Committee":
        raise LookupError(f"{object_id} is not a committee key server")
    members = []
    for raw in server_type.fields["partial_key_servers"]:  # type: ignore[union-attr]
        member = as_struct(raw)
        members.append(CommitteeMember(int(member.fields["party_id"]), str(member.fields["url"]),  # type: ignore[arg-type]
                                       bytes(member.fields["partial_pk"])))  # type: ignore[arg-type]
    threshold = server_type.fields["threshold"]
    if not isinstance(threshold, int):
        raise LookupError("committee threshold is not a number")
    return Committee(threshold, tuple(members))


def new_committee_keys(threshold: int, members: int, rng: Callable[[int], bytes]) -> CommitteeKeys:
    master = bls.random_scalar(rng)
    shares = split_master_key(master, threshold, members, rng)
    return CommitteeKeys(bls.scalar_to_bytes(master), threshold, tuple(bls.scalar_to_bytes(share) for share in shares))
