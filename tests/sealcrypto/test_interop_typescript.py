"""Interop with the official TypeScript SDK (@mysten/seal, pinned in tests/interop/package.json)."""

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from sealcrypto import (
    DemKind,
    ElGamalKeyPair,
    EncryptedObject,
    KeyServerPublic,
    KeyServerSecret,
    bls,
    decrypt,
    elgamal_encrypt,
    encrypt,
)

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
