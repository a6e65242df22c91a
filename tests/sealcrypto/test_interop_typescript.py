"""Interop with the official TypeScript SDK (@mysten/seal, pinned in tests/interop/package.json)."""

import asyncio
import base64
import json
import os
import shutil
import subprocess
from pathlib import Path

import httpx
import nacl.signing
import pytest

from chain.address import sui_address
from localnet.seal_policy import AccountView
from localnet.seal_server import build_seal_server_app
from sealcrypto import (
    DemKind,
    ElGamalKeyPair,
    EncryptedObject,
    KeyServerClient,
    KeyServerEndpoint,
    KeyServerPublic,
    KeyServerSecret,
    SessionKey,
    bls,
    build_seal_approve_ptb,
    decrypt,
    elgamal_encrypt,
    encrypt,
)
from tests.sealcrypto.loopback_server import real_server

INTEROP_DIR = Path(__file__).resolve().parent.parent / "interop"
NODE_TIMEOUT_SECONDS = 60

pytestmark = pytest.mark.interop


def run_oracle(operations):
    node = shutil.which("node")
    if node is None or not (INTEROP_DIR / "node_modules" / "@mysten" / "seal").is_dir():
        pytest.fail("node and tests/interop/node_modules are required (run `make node`)")
    completed = subprocess.run(
        [node, "seal_oracle.mjs"],
        input=json.dumps(operations),
        cwd=INTEROP_DIR,
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT_SECONDS,
        check=True,
    )
    return json.loads(completed.stdout)


@pytest.fixture(scope="module")
def servers():
    secrets = [KeyServerSecret.generate() for _ in range(3)]
    return secrets, [KeyServerPublic(os.urandom(32), s.public_key) for s in secrets]


class TestPythonToTypescript:
    @pytest.mark.parametrize("dem_kind", [DemKind.AES_256_GCM, DemKind.HMAC_256_CTR])
    def test_typescript_decrypts_our_objects(self, servers, dem_kind):
        secrets, publics = servers
        package_id, inner_id = os.urandom(32), os.urandom(32)
        blob = encrypt(package_id=package_id, inner_id=inner_id, key_servers=publics, threshold=2,
                       plaintext=b"from python", aad=b"a", dem_kind=dem_kind)
        full_id = package_id + inner_id
        keys = [{"objectId": "0x" + p.object_id.hex(), "usk": s.extract(full_id).hex()} for s, p in zip(secrets, publics)]
        result = run_oracle([
            {"op": "decrypt", "object": blob.hex(), "keys": keys[1:]},
            {"op": "decrypt", "object": blob.hex(), "keys": keys, "publicKeys": [p.public_key.hex() for p in publics]},
            {"op": "decrypt", "object": blob.hex(), "keys": keys[:1]},
        ])
        assert result[0] == {"plaintext": b"from python".hex()}
        assert result[1] == {"plaintext": b"from python".hex()}
        assert "error" in result[2]


class TestTypescriptToPython:
    @pytest.mark.parametrize("dem", ["aes", "hmac"])
    def test_we_decrypt_typescript_objects(self, servers, dem):
        secrets, publics = servers
        package_id = os.urandom(32)
        result = run_oracle([{
            "op": "encrypt", "dem": dem, "threshold": 2, "packageId": "0x" + package_id.hex(), "id": "c0ffee",
            "data": b"from typescript".hex(), "aad": "",
            "servers": [{"objectId": "0x" + p.object_id.hex(), "pk": p.public_key.hex()} for p in publics],
        }])
        obj = EncryptedObject.from_bytes(bytes.fromhex(result[0]["object"]))
        assert obj.ciphertext.aad == b""  # TS always writes Some(aad)
        assert obj.inner_id == bytes.fromhex("c0ffee")
        keys = {p.object_id: s.extract(obj.full_id) for s, p in zip(secrets, publics)}
        assert decrypt(obj, {oid: keys[oid] for oid in list(keys)[:2]}) == b"from typescript"
        assert decrypt(obj, keys, public_keys=[p.public_key for p in publics]) == b"from typescript"


class TestElGamalInterop:
    def test_typescript_opens_our_key_server_ciphertexts(self):
        keypair = ElGamalKeyPair.generate()
        usks = [KeyServerSecret.generate().extract_point(os.urandom(40)) for _ in range(3)]
        ciphertexts = [[base64.b64encode(part).decode() for part in elgamal_encrypt(keypair.public_key, usk)] for usk in usks]
        result = run_oracle([{"op": "elgamal", "secret": bls.scalar_to_bytes(keypair.secret).hex(), "ciphertexts": ciphertexts}])
        assert result[0]["keys"] == [bls.g1_to_bytes(usk).hex() for usk in usks]


class TestSealClientAgainstLocalnetKeyServers:
    """The public SealClient + SessionKey of @mysten/seal against our key servers over real sockets."""

    async def test_full_flow_both_directions(self):
        user_seed = os.urandom(32)
        user = sui_address(bytes(nacl.signing.SigningKey(user_seed).verify_key))
        package_id, account_id = "0x" + os.urandom(32).hex(), "0x" + os.urandom(32).hex()
        accounts = {account_id: AccountView(account_id, user, True, ())}

        async def lookup(object_id):
            return accounts.get(object_id)

        secrets = [KeyServerSecret.generate() for _ in range(2)]
        object_ids = ["0x" + os.urandom(32).hex() for _ in secrets]
        inner_id = bytes.fromhex(user[2:])
        publics = [KeyServerPublic(bytes.fromhex(oid[2:]), s.public_key) for oid, s in zip(object_ids, secrets)]
        py_object = encrypt(package_id=bytes.fromhex(package_id[2:]), inner_id=inner_id, key_servers=publics,
                            threshold=2, plaintext=b"sealed by python")
        apps = [build_seal_server_app(s, oid, lookup) for s, oid in zip(secrets, object_ids)]
        async with real_server(apps[0]) as first, real_server(apps[1]) as second:
            urls = [first, second]
            request = {
                "servers": [{"objectId": oid, "url": url, "pk": s.public_key.hex()} for oid, url, s in zip(object_ids, urls, secrets)],
                "packageId": package_id, "accountId": account_id, "initialSharedVersion": 3,
                "userSeed": user_seed.hex(), "innerId": inner_id.hex(), "pyObject": py_object.hex(), "threshold": 2,
            }
            process = await asyncio.create_subprocess_exec(
                shutil.which("node") or "node", "seal_client_flow.mjs", cwd=INTEROP_DIR,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )
            stdout, stderr = await asyncio.wait_for(process.communicate(json.dumps(request).encode()), NODE_TIMEOUT_SECONDS)
            assert process.returncode == 0, stderr.decode()[-2000:]
            result = json.loads(stdout)
            assert result.get("error") is None, result.get("error")
            assert result["address"] == user
            assert bytes.fromhex(result["tsPlaintext"]) == b"sealed by typescript"
            assert bytes.fromhex(result["pyPlaintext"]) == b"sealed by python"

            # The TS-exported session (x-seal-session form) drives our client against the same servers.
            session = SessionKey.from_header(result["session"])
            ts_object = EncryptedObject.from_bytes(bytes.fromhex(result["tsObject"]))
            endpoints = [KeyServerEndpoint(oid, url, s.public_key) for oid, url, s in zip(object_ids, urls, secrets)]
            ptb = build_seal_approve_ptb(package_id, [(ts_object.inner_id, account_id, 3)])
            async with httpx.AsyncClient() as http:
                keys = await KeyServerClient(endpoints, 2, http, 10.0).fetch_keys(ptb, session, [ts_object.full_id])
        usks = {oid: per_id[ts_object.full_id] for oid, per_id in keys.items()}
        assert decrypt(ts_object, usks) == b"sealed by typescript"
