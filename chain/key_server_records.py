"""Seal's on-chain key-server records (``seal::key_server``) → ``KeyServerInfo``, for every backend.

A ``KeyServer`` object carries its data in dynamic fields keyed by ``u64``: ``1`` → ``KeyServerV1{name,
url, key_type, pk}``, ``2`` → ``KeyServerV2{name, key_type, pk, server_type}`` with ``server_type``
``Independent{url}`` or ``Committee{version, threshold, partial_key_servers}``. Servers made by
``create_committee_v2`` or ``create_and_transfer_v2_independent_server`` have only the V2 record; an
upgraded V1 server has both, and Seal's accessors prefer V2, so this does too.
"""

from __future__ import annotations

from collections.abc import Mapping

from chain import move_json
from chain.errors import ChainProtocolError
from chain.reader import CommitteeServer, IndependentServer, KeyServerInfo, PartialKeyServer

V1_FIELD_KEY = 1
V2_FIELD_KEY = 2
G2_POINT_BYTES = 96
MAX_COMMITTEE_MEMBERS = 255  # party ids are u16, but Seal's Shamir shares are indexed by u8
KEY_SERVER_TYPE_SUFFIX = "::key_server::KeyServer"


def parse_key_server(
    object_id: str, v1: Mapping[str, object] | None, v2: Mapping[str, object] | None
) -> KeyServerInfo:
    """Build the server's description from its V1 and/or V2 record fields (either may be absent)."""
    if v2 is not None:
        return _from_v2(object_id, v2)
    if v1 is not None:
        return KeyServerInfo(
            object_id=move_json.as_address(object_id),
            name=move_json.as_string(move_json.field(v1, "name")),
            key_type=move_json.as_int(move_json.field(v1, "key_type"), bits=8),
            public_key=_g2(move_json.field(v1, "pk"), "public key"),
            server_type=IndependentServer(move_json.as_string(move_json.field(v1, "url"))),
            record_version=1,
        )
    raise ChainProtocolError(f"key server {object_id} has neither a V1 nor a V2 record")


def _from_v2(object_id: str, record: Mapping[str, object]) -> KeyServerInfo:
    variant, fields = move_json.variant_of(move_json.field(record, "server_type"))
    server_type: IndependentServer | CommitteeServer
    if variant == "Independent":
        server_type = IndependentServer(move_json.as_string(move_json.field(fields, "url")))
    elif variant == "Committee":
        server_type = _committee(fields)
    else:
        raise ChainProtocolError(f"unknown key server type {variant!r}")
    return KeyServerInfo(
        object_id=move_json.as_address(object_id),
        name=move_json.as_string(move_json.field(record, "name")),
        key_type=move_json.as_int(move_json.field(record, "key_type"), bits=8),
        public_key=_g2(move_json.field(record, "pk"), "public key"),
        server_type=server_type,
        record_version=2,
    )


def _committee(fields: Mapping[str, object]) -> CommitteeServer:
    raw_members = move_json.as_list(move_json.field(fields, "partial_key_servers"), max_length=MAX_COMMITTEE_MEMBERS)
    members = []
    for position, raw in enumerate(raw_members):
        member = move_json.fields_of(raw)
        party_id = move_json.as_int(move_json.field(member, "party_id"), bits=16)
        if party_id != position:  # seal::key_server::validate_partial_key_servers guarantees this on chain
            raise ChainProtocolError("committee party ids must equal their positions")
        members.append(
            PartialKeyServer(
                name=move_json.as_string(move_json.field(member, "name")),
                url=move_json.as_string(move_json.field(member, "url")),
                partial_public_key=_g2(move_json.field(member, "partial_pk"), "partial public key"),
                party_id=party_id,
            )
        )
    threshold = move_json.as_int(move_json.field(fields, "threshold"), bits=16)
    if not 1 <= threshold <= len(members):
        raise ChainProtocolError("committee threshold must be between 1 and the number of members")
    return CommitteeServer(
        version=move_json.as_int(move_json.field(fields, "version"), bits=32),
        threshold=threshold,
        members=tuple(members),
    )


def _g2(value: object, what: str) -> bytes:
    raw = move_json.as_bytes(value, max_length=G2_POINT_BYTES)
    if len(raw) != G2_POINT_BYTES:
        raise ChainProtocolError(f"key server {what} is not {G2_POINT_BYTES} bytes")
    return raw
