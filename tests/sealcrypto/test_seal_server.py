"""The localnet Seal key server (localnet/seal_server.py) driven by our KeyServerClient and raw HTTP."""

import base64
import os

import httpx
import nacl.signing
import pytest

from chain.address import sui_address
from chain.personal_message import sign_personal_message
from localnet.seal_http import MAX_BODY_BYTES
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
    build_seal_approve_ptb,
    decrypt_objects,
    encrypt,
)
from sealcrypto.elgamal import ElGamalKeyPair
from sealcrypto.key_server_secret import verify_proof_of_possession
from tests.sealcrypto.loopback_server import real_server

NOW_MS = 1_700_000_000_000
PACKAGE = "0x" + "5e" * 32
OWNER_SEED, DELEGATE_SEED, STRANGER_SEED, OTHER_OWNER_SEED = (bytes([n]) * 32 for n in (1, 2, 3, 4))
OWNER, DELEGATE, STRANGER, OTHER_OWNER = (
    sui_address(bytes(nacl.signing.SigningKey(seed).verify_key))
    for seed in (OWNER_SEED, DELEGATE_SEED, STRANGER_SEED, OTHER_OWNER_SEED)
)
ACCOUNT = "0x" + "a1" * 32
INACTIVE_ACCOUNT = "0x" + "a2" * 32
ACCOUNTS = {
    ACCOUNT: AccountView(ACCOUNT, OWNER, True, (DELEGATE,)),
    INACTIVE_ACCOUNT: AccountView(INACTIVE_ACCOUNT, OWNER, False, (DELEGATE,)),
}
SERVER_IDS = ["0x" + f"{n:02x}" * 32 for n in (0x51, 0x52, 0x53)]
SECRETS = [KeyServerSecret.from_seed(bytes(32), n) for n in range(3)]


async def lookup(account_id):
    return ACCOUNTS.get(account_id)


def clock():
    return (NOW_MS + 30_000) / 1000


def session_for(seed, **overrides):
    args = dict(user_seed=seed, package_id=PACKAGE, ttl_min=5, now_ms=NOW_MS, session_seed=os.urandom(32))
    args.update(overrides)
    return SessionKey.create(**args)


def owner_id(address):
    return bytes.fromhex(address[2:])


def apps(**options):
    return [build_seal_server_app(s, oid, lookup, clock=clock, **options) for s, oid in zip(SECRETS, SERVER_IDS)]


def endpoints(count=3):
    return [KeyServerEndpoint(SERVER_IDS[n], f"http://ks{n}", SECRETS[n].public_key) for n in range(count)]


def mounted_client(server_apps):
    return httpx.AsyncClient(
        mounts={f"http://ks{n}": httpx.ASGITransport(app=app) for n, app in enumerate(server_apps)}
    )


async def fetch(seed, inner_ids, *, account=ACCOUNT, threshold=2, server_apps=None, session=None):
    session = session or session_for(seed)
    ptb = build_seal_approve_ptb(PACKAGE, [(inner_id, account, 3) for inner_id in inner_ids])
    full_ids = [owner_id(PACKAGE) + inner_id for inner_id in inner_ids]
    async with mounted_client(server_apps or apps()) as http:
        client = KeyServerClient(endpoints(), threshold, http, 5.0, clock=clock)
        return await client.fetch_keys(ptb, session, full_ids)


class TestPolicy:
    async def test_owner_gets_verified_keys_that_decrypt(self):
        inner = owner_id(OWNER)
        servers = [KeyServerPublic(owner_id(oid), s.public_key) for oid, s in zip(SERVER_IDS, SECRETS)]
        blob = encrypt(package_id=owner_id(PACKAGE), inner_id=inner, key_servers=servers[:2], threshold=2, plaintext=b"m")
        keys = await fetch(OWNER_SEED, [inner])
        assert len(keys) == 2
        assert decrypt_objects([EncryptedObject.from_bytes(blob)], keys) == [b"m"]

    async def test_owner_denied_for_an_id_that_is_not_theirs(self):
        with pytest.raises(KeyServerError, match="403 NoAccess") as info:
            await fetch(OWNER_SEED, [owner_id(OTHER_OWNER)])
        assert info.value.permanent

    async def test_legacy_policy_lets_delegates_fetch_foreign_ids(self):
        # MemWal issue #369, kept behind a flag for compatibility tests: the old delegate branch ignores the id.
        legacy = apps(fixed_policy=False)
        assert await fetch(DELEGATE_SEED, [owner_id(OWNER)], server_apps=legacy)
        assert await fetch(DELEGATE_SEED, [owner_id(OTHER_OWNER)], server_apps=legacy)

    async def test_fixed_policy_by_default_limits_delegates_to_the_owner_id(self):
        assert await fetch(DELEGATE_SEED, [owner_id(OWNER)])
        with pytest.raises(KeyServerError, match="NoAccess"):
            await fetch(DELEGATE_SEED, [owner_id(OTHER_OWNER)])

    async def test_stranger_denied(self):
        with pytest.raises(KeyServerError, match="NoAccess"):
            await fetch(STRANGER_SEED, [owner_id(OWNER)])

    async def test_inactive_or_unknown_account_denied(self):
        with pytest.raises(KeyServerError, match="NoAccess"):
            await fetch(OWNER_SEED, [owner_id(OWNER)], account=INACTIVE_ACCOUNT)
        with pytest.raises(KeyServerError, match="NoAccess"):
            await fetch(OWNER_SEED, [owner_id(OWNER)], account="0x" + "99" * 32)


class TestClient:
    async def test_threshold_met_with_one_server_down(self):
        down = httpx.AsyncClient(
            mounts={
                "http://ks0": httpx.ASGITransport(app=apps()[0]),
                "http://ks1": httpx.MockTransport(lambda request: httpx.Response(503, json={"error": "Failure"})),
                "http://ks2": httpx.ASGITransport(app=apps()[2]),
            }
        )
        ptb = build_seal_approve_ptb(PACKAGE, [(owner_id(OWNER), ACCOUNT, 3)])
        async with down:
            keys = await KeyServerClient(endpoints(), 2, down, clock=clock).fetch_keys(
                ptb, session_for(OWNER_SEED), [owner_id(PACKAGE) + owner_id(OWNER)]
            )
        assert set(keys) == {owner_id(SERVER_IDS[0]), owner_id(SERVER_IDS[2])}

    async def test_wrong_keys_are_dropped(self):
        impostor = build_seal_server_app(KeyServerSecret.generate(), SERVER_IDS[1], lookup, clock=clock)
        server_apps = [apps()[0], impostor, apps()[2]]
        with pytest.raises(KeyServerError, match="MissingKeys") as info:
            await fetch(OWNER_SEED, [owner_id(OWNER)], threshold=3, server_apps=server_apps)
        assert not info.value.permanent

    async def test_transient_errors_are_not_permanent(self):
        failing = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(429, json={"error": "TooMany"})))
        ptb = build_seal_approve_ptb(PACKAGE, [(owner_id(OWNER), ACCOUNT, 3)])
        async with failing:
            with pytest.raises(KeyServerError, match="429 TooMany") as info:
                await KeyServerClient(endpoints(), 2, failing, clock=clock).fetch_keys(ptb, session_for(OWNER_SEED), [b"x"])
        assert not info.value.permanent

    async def test_expired_session_is_refused_locally(self):
        ptb = build_seal_approve_ptb(PACKAGE, [(owner_id(OWNER), ACCOUNT, 3)])
        async with mounted_client(apps()) as http:
            client = KeyServerClient(endpoints(), 2, http, clock=lambda: (NOW_MS + 3_600_000) / 1000)
            with pytest.raises(Exception, match="expired"):
                await client.fetch_keys(ptb, session_for(OWNER_SEED), [b"x"])


def raw_body(session, *, ptb=None, tamper_signature=False, certificate=None):
    ptb = ptb if ptb is not None else build_seal_approve_ptb(PACKAGE, [(owner_id(OWNER), ACCOUNT, 3)])
    keypair = ElGamalKeyPair.generate()
    signature = session.sign_request(ptb, keypair.public_key, keypair.verification_key)
    if tamper_signature:
        signature = session.sign_request(ptb + b"\x00", keypair.public_key, keypair.verification_key)
    return {
        "ptb": base64.b64encode(ptb).decode(),
        "enc_key": base64.b64encode(keypair.public_key).decode(),
        "enc_verification_key": base64.b64encode(keypair.verification_key).decode(),
        "request_signature": signature,
        "certificate": certificate or session.certificate().to_json(),
    }


HEADERS = {"Client-Sdk-Type": "python", "Client-Sdk-Version": "0.1.0"}


async def post(body=None, headers=HEADERS, content=None, **options):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=apps(**options)[0]), base_url="http://ks") as http:
        if content is not None:
            return await http.post("/v1/fetch_key", content=content, headers=headers)
        return await http.post("/v1/fetch_key", json=body, headers=headers)


class TestProtocol:
    async def test_requires_sdk_version_and_sends_server_version(self):
        response = await post(raw_body(session_for(OWNER_SEED)), headers={})
        assert response.status_code == 400 and response.json()["error"] == "MissingRequiredHeader"
        assert response.headers["X-KeyServer-Version"] == "0.6.10" and "X-KeyServer-GitVersion" in response.headers

    async def test_deprecated_typescript_sdk(self):
        response = await post(raw_body(session_for(OWNER_SEED)), headers={"Client-Sdk-Type": "typescript", "Client-Sdk-Version": "0.4.4"})
        assert (response.status_code, response.json()["error"]) == (426, "DeprecatedSDKVersion")

    async def test_body_cap(self):
        response = await post(content=b"{" + b" " * MAX_BODY_BYTES + b"}")
        assert (response.status_code, response.json()["error"]) == (413, "PayloadTooLarge")

    async def test_bad_request_signature(self):
        response = await post(raw_body(session_for(OWNER_SEED), tamper_signature=True))
        assert (response.status_code, response.json()["error"]) == (403, "InvalidSessionSignature")

    async def test_bad_personal_message_signature(self):
        session = session_for(OWNER_SEED)
        certificate = session.certificate().to_json()
        certificate["signature"] = sign_personal_message(STRANGER_SEED, session.personal_message())
        response = await post(raw_body(session, certificate=certificate))
        assert (response.status_code, response.json()["error"]) == (403, "InvalidSignature")

    @pytest.mark.parametrize("field, value", [("ttl_min", 31), ("creation_time", NOW_MS - 10 * 60_000), ("creation_time", NOW_MS + 60_000)])
    async def test_certificate_window(self, field, value):
        session = session_for(OWNER_SEED)
        certificate = session.certificate().to_json()
        certificate[field] = value
        response = await post(raw_body(session, certificate=certificate))
        assert (response.status_code, response.json()["error"]) == (403, "InvalidCertificate")

    async def test_invalid_ptbs(self):
        session = session_for(OWNER_SEED)
        response = await post(raw_body(session, ptb=b"\x00\x00"))
        assert (response.status_code, response.json()["error"]) == (403, "InvalidPTB")
        unknown_function = build_seal_approve_ptb(PACKAGE, [(owner_id(OWNER), ACCOUNT, 3)], function="seal_approve_x")
        response = await post(raw_body(session, ptb=unknown_function))
        assert (response.status_code, response.json()["error"]) == (403, "InvalidPTB")

    async def test_unserved_package(self):
        response = await post(raw_body(session_for(OWNER_SEED)), package_ids={"0x" + "77" * 32: "0x" + "77" * 32})
        assert (response.status_code, response.json()["error"]) == (403, "InvalidPackage")

    async def test_upgraded_package_maps_to_original_identity(self):
        upgraded = "0x" + "6e" * 32
        session = session_for(OWNER_SEED)
        ptb = build_seal_approve_ptb(upgraded, [(owner_id(OWNER), ACCOUNT, 3)])
        response = await post(raw_body(session, ptb=ptb), package_ids={upgraded: PACKAGE})
        assert response.status_code == 200
        assert bytes(response.json()["decryption_keys"][0]["id"]) == owner_id(PACKAGE) + owner_id(OWNER)

    async def test_service_proof_of_possession(self):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=apps()[0]), base_url="http://ks") as http:
            good = await http.get("/v1/service", params={"service_id": SERVER_IDS[0]})
            bad = await http.get("/v1/service", params={"service_id": SERVER_IDS[1]})
        pop = base64.b64decode(good.json()["pop"])
        assert good.json()["service_id"] == SERVER_IDS[0]
        assert verify_proof_of_possession(pop, SECRETS[0].public_key, owner_id(SERVER_IDS[0]))
        assert (bad.status_code, bad.json()["error"]) == (400, "InvalidServiceId")


class TestOverRealSockets:
    async def test_fetch_and_decrypt_through_hypercorn(self):
        server_apps = apps()
        async with real_server(server_apps[0]) as first, real_server(server_apps[1]) as second:
            urls = [first, second]
            servers = [KeyServerEndpoint(SERVER_IDS[n], urls[n], SECRETS[n].public_key) for n in range(2)]
            inner = owner_id(OWNER)
            publics = [KeyServerPublic(owner_id(s.object_id), s.public_key) for s in servers]
            blob = encrypt(package_id=owner_id(PACKAGE), inner_id=inner, key_servers=publics, threshold=2, plaintext=b"sock")
            obj = EncryptedObject.from_bytes(blob)
            ptb = build_seal_approve_ptb(PACKAGE, [(inner, ACCOUNT, 3)])
            async with httpx.AsyncClient() as http:
                keys = await KeyServerClient(servers, 2, http, 5.0, clock=clock).fetch_keys(
                    ptb, session_for(DELEGATE_SEED), [obj.full_id]
                )
                denied = KeyServerClient(servers, 2, http, 5.0, clock=clock).fetch_keys(
                    ptb, session_for(STRANGER_SEED), [obj.full_id]
                )
                with pytest.raises(KeyServerError, match="NoAccess"):
                    await denied
        assert decrypt_objects([obj], keys) == [b"sock"]
