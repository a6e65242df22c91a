"""The Seal committee: a master key split t-of-n among real key servers, one aggregator in front, and our
KeyServerClient treating the committee as one server (sealcrypto.committee + localnet.seal_aggregator)."""

from __future__ import annotations

import contextlib
import os
import socket

import httpx
import nacl.signing
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from chain.address import sui_address
from localnet.runner import serving
from localnet.seal_aggregator import Committee, CommitteeMember, build_seal_aggregator_app, committee_lookup_from
from localnet.seal_http import RESPONSE_HEADERS
from localnet.seal_policy import AccountView
from localnet.seal_server import build_seal_server_app
from sealcrypto import (
    EncryptedObject,
    KeyServerClient,
    KeyServerEndpoint,
    KeyServerError,
    KeyServerPublic,
    KeyServerSecret,
    SessionKey,
    bls,
    build_seal_approve_ptb,
    decrypt_objects,
    encrypt,
)
from sealcrypto.committee import (
    aggregate_encrypted_shares,
    split_master_key,
    verify_committee_public_key,
    verify_encrypted_share,
)
from sealcrypto.elgamal import ElGamalKeyPair, elgamal_encrypt
from sealcrypto.errors import InvalidKey
from sealcrypto.kdf import identity_point
from sealcrypto.key_server_secret import verify_user_secret_key

NOW_MS = 1_700_000_000_000
PACKAGE = "0x" + "5e" * 32
COMMITTEE_ID = "0x" + "c0" * 32
OWNER_SEED, DELEGATE_SEED = bytes([1]) * 32, bytes([2]) * 32
OWNER, DELEGATE = (sui_address(bytes(nacl.signing.SigningKey(seed).verify_key)) for seed in (OWNER_SEED, DELEGATE_SEED))
ACCOUNT = "0x" + "a1" * 32
MASTER = KeyServerSecret.from_seed(bytes([7]) * 32, 0)
SHARES = split_master_key(MASTER.master_key, 3, 5, rng=lambda n: bytes([9]) * n)
PARTIAL_KEYS = [bls.g2_to_bytes(bls.g2_generator() * share) for share in SHARES]


async def lookup(account_id):
    return AccountView(ACCOUNT, OWNER, True, (DELEGATE,)) if account_id == ACCOUNT else None


def clock():
    return (NOW_MS + 30_000) / 1000


def member_app(party_id: int, share=None):
    return build_seal_server_app(KeyServerSecret(share or SHARES[party_id]), COMMITTEE_ID, lookup, clock=clock,
                                 package_ids={PACKAGE: PACKAGE})


def dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@contextlib.asynccontextmanager
async def committee(members, threshold=3):
    """``members``: per party an ASGI app or a URL; yields the aggregator's URL."""
    async with contextlib.AsyncExitStack() as stack:
        urls = []
        for party_id, member in enumerate(members):
            urls.append(member if isinstance(member, str)
                        else await stack.enter_async_context(serving(member, name=f"member-{party_id}")))
        record = Committee(threshold, tuple(CommitteeMember(party, url, PARTIAL_KEYS[party]) for party, url in enumerate(urls)))
        aggregator = build_seal_aggregator_app(committee_lookup_from(lambda: record), {PACKAGE: PACKAGE})
        yield await stack.enter_async_context(serving(aggregator, name="aggregator"))


def session():
    return SessionKey.create(user_seed=DELEGATE_SEED, package_id=PACKAGE, ttl_min=5, now_ms=NOW_MS, session_seed=os.urandom(32))


async def committee_decrypt(aggregator_url: str, plaintext: bytes = b"committee secret") -> bytes:
    inner_id = bytes.fromhex(OWNER[2:])
    endpoint = KeyServerEndpoint(COMMITTEE_ID, aggregator_url, MASTER.public_key)
    blob = encrypt(package_id=bytes.fromhex(PACKAGE[2:]), inner_id=inner_id, threshold=1,
                   key_servers=[KeyServerPublic.from_hex(COMMITTEE_ID, MASTER.public_key)], plaintext=plaintext)
    obj = EncryptedObject.from_bytes(blob)
    ptb = build_seal_approve_ptb(PACKAGE, [(inner_id, ACCOUNT, 3)])
    async with httpx.AsyncClient(timeout=20) as http:
        keys = await KeyServerClient([endpoint], 1, http, clock=clock).fetch_keys(ptb, session(), [obj.full_id])
    [result] = decrypt_objects([obj], keys)
    assert isinstance(result, bytes)
    return result


class TestCommitteeCrypto:
    def test_shares_reconstruct_the_master_key_in_the_exponent(self):
        assert verify_committee_public_key(MASTER.public_key, 3, PARTIAL_KEYS)
        full_id = bytes(32) + b"id"
        keypair = ElGamalKeyPair.generate()
        shares = [(party, elgamal_encrypt(keypair.public_key, identity_point(full_id) * SHARES[party])) for party in (4, 0, 2)]
        assert all(verify_encrypted_share(ct, keypair.verification_key, PARTIAL_KEYS[party], full_id) for party, ct in shares)
        usk = keypair.decrypt(aggregate_encrypted_shares(3, shares))
        assert verify_user_secret_key(usk, full_id, MASTER.public_key)

    def test_too_few_shares_do_not_give_the_key(self):
        full_id = bytes(32) + b"id"
        keypair = ElGamalKeyPair.generate()
        shares = [(party, elgamal_encrypt(keypair.public_key, identity_point(full_id) * SHARES[party])) for party in (0, 1)]
        usk = keypair.decrypt(aggregate_encrypted_shares(2, shares))
        assert not verify_user_secret_key(usk, full_id, MASTER.public_key)
        with pytest.raises(InvalidKey, match="exactly 3"):
            aggregate_encrypted_shares(3, shares)

    def test_inconsistent_committee_records_are_detected(self):
        other = KeyServerSecret.generate().public_key
        assert not verify_committee_public_key(other, 3, PARTIAL_KEYS)  # wrong committee key
        assert not verify_committee_public_key(MASTER.public_key, 3, PARTIAL_KEYS[:4] + [other])  # a member's key swapped
        assert not verify_committee_public_key(MASTER.public_key, 6, PARTIAL_KEYS)
        assert not verify_committee_public_key(MASTER.public_key, 3, PARTIAL_KEYS[:2] + [b"\x00" * 96])

    def test_a_share_for_another_id_or_member_does_not_verify(self):
        keypair = ElGamalKeyPair.generate()
        ciphertext = elgamal_encrypt(keypair.public_key, identity_point(bytes(32) + b"a") * SHARES[0])
        assert not verify_encrypted_share(ciphertext, keypair.verification_key, PARTIAL_KEYS[0], bytes(32) + b"b")
        assert not verify_encrypted_share(ciphertext, keypair.verification_key, PARTIAL_KEYS[1], bytes(32) + b"a")
        assert not verify_encrypted_share(ciphertext, ElGamalKeyPair.generate().verification_key, PARTIAL_KEYS[0],
                                          bytes(32) + b"a")


@pytest.mark.slow
class TestAggregator:
    async def test_all_members_up(self):
        async with committee([member_app(party) for party in range(5)]) as aggregator:
            assert await committee_decrypt(aggregator) == b"committee secret"

    async def test_two_members_down_is_still_a_threshold(self):
        members = [member_app(0), dead_url(), member_app(2), dead_url(), member_app(4)]
        async with committee(members) as aggregator:
            assert await committee_decrypt(aggregator) == b"committee secret"

    async def test_a_member_with_a_wrong_share_is_left_out(self):
        liar = member_app(1, share=KeyServerSecret.generate().master_key)
        members = [member_app(0), liar, member_app(2), member_app(3), dead_url()]
        async with committee(members) as aggregator:
            assert await committee_decrypt(aggregator) == b"committee secret"

    async def test_below_threshold_is_a_transient_failure(self):
        liar = member_app(1, share=KeyServerSecret.generate().master_key)
        members = [member_app(0), liar, dead_url(), dead_url(), member_app(4)]
        async with committee(members) as aggregator:
            with pytest.raises(KeyServerError) as raised:
                await committee_decrypt(aggregator)
        assert raised.value.kind == "Failure" and not raised.value.permanent

    async def test_members_refusing_access_is_relayed_as_permanent(self):
        async def deny(request):
            return JSONResponse({"error": "NoAccess", "message": "denied"}, status_code=403, headers=RESPONSE_HEADERS)

        denying = Starlette(routes=[Route("/v1/fetch_key", deny, methods=["POST"])])
        async with committee([denying, denying, denying, member_app(3), dead_url()]) as aggregator:
            with pytest.raises(KeyServerError) as raised:
                await committee_decrypt(aggregator)
        assert (raised.value.status, raised.value.kind, raised.value.permanent) == (403, "NoAccess", True)

    async def test_clients_must_name_their_sdk_and_service_is_unsupported(self):
        async with committee([member_app(party) for party in range(3)]) as aggregator, httpx.AsyncClient() as http:
            response = await http.post(f"{aggregator}/v1/fetch_key", json={}, headers={"Client-Sdk-Version": "1.0.0"})
            assert response.status_code == 400 and response.json()["error"] == "InvalidSDKType"
            response = await http.post(f"{aggregator}/v1/fetch_key", json={},
                                       headers={"Client-Sdk-Version": "1.0.0", "Client-Sdk-Type": "aggregator"})
            assert response.json()["error"] == "InvalidSDKType"
            assert (await http.get(f"{aggregator}/v1/service", params={"service_id": COMMITTEE_ID})).status_code == 400

    @pytest.mark.parametrize("kind", ["InvalidSDKType", "InvalidServiceId"])
    async def test_these_refusals_are_permanent_for_the_client(self, kind):
        async def refuse(request):
            return JSONResponse({"error": kind, "message": "no"}, status_code=400, headers=RESPONSE_HEADERS)

        app = Starlette(routes=[Route("/v1/fetch_key", refuse, methods=["POST"])])
        async with serving(app, name="refusing") as url:
            with pytest.raises(KeyServerError) as raised:
                await committee_decrypt(url)
        assert (raised.value.kind, raised.value.permanent) == (kind, True)
