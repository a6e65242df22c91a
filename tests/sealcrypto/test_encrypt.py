import os

import pytest

from sealcrypto import DemKind, EncryptedObject, KeyServerPublic, KeyServerSecret, decrypt, encrypt, encrypt_object
from sealcrypto.errors import InvalidKey


@pytest.fixture(scope="module")
def three_servers():
    secrets = [KeyServerSecret.generate() for _ in range(3)]
    return secrets, [KeyServerPublic(os.urandom(32), s.public_key) for s in secrets]


def _keys(obj, secrets, servers):
    return {server.object_id: s.extract(obj.full_id) for server, s in zip(servers, secrets)}


class TestRoundTrip:
    @pytest.mark.parametrize("dem_kind", [DemKind.AES_256_GCM, DemKind.HMAC_256_CTR])
    def test_two_of_three_every_pair(self, three_servers, dem_kind):
        secrets, servers = three_servers
        raw = encrypt(
            package_id=os.urandom(32), inner_id=b"ns" + os.urandom(32), key_servers=servers,
            threshold=2, plaintext=b"memory " * 100, aad=b"meta", dem_kind=dem_kind,
        )
        obj = EncryptedObject.from_bytes(raw)
        assert obj.to_bytes() == raw
        assert [slot.index for slot in obj.services] == [1, 2, 3]
        keys = _keys(obj, secrets, servers)
        for drop in keys:
            subset = {oid: usk for oid, usk in keys.items() if oid != drop}
            assert decrypt(obj, subset) == b"memory " * 100

    @pytest.mark.parametrize("aad", [None, b""])
    def test_aad_none_and_empty_both_decrypt(self, three_servers, aad):
        secrets, servers = three_servers
        obj, _ = encrypt_object(
            package_id=os.urandom(32), inner_id=b"id", key_servers=servers[:2], threshold=2, plaintext=b"x", aad=aad
        )
        assert obj.ciphertext.aad == aad
        assert EncryptedObject.from_bytes(obj.to_bytes()).ciphertext.aad == aad
        assert decrypt(obj, _keys(obj, secrets, servers)) == b"x"

    def test_weighted_duplicate_server(self, three_servers):
        secrets, servers = three_servers
        weighted = [servers[0], servers[0], servers[1]]
        obj, _ = encrypt_object(
            package_id=os.urandom(32), inner_id=b"id", key_servers=weighted, threshold=2, plaintext=b"w"
        )
        assert [slot.index for slot in obj.services] == [1, 2, 3]
        heavy = {servers[0].object_id: secrets[0].extract(obj.full_id)}
        assert decrypt(obj, heavy, public_keys=[s.public_key for s in weighted]) == b"w"

    def test_plain_mode_returns_dem_key(self, three_servers):
        secrets, servers = three_servers
        obj, dem_key = encrypt_object(
            package_id=os.urandom(32), inner_id=b"id", key_servers=servers, threshold=1,
            plaintext=b"", dem_kind=DemKind.PLAIN,
        )
        assert decrypt(obj, {servers[2].object_id: secrets[2].extract(obj.full_id)}) == dem_key

    def test_deterministic_with_injected_rng(self, three_servers):
        _, servers = three_servers

        def fixed_rng_factory():
            state = {"n": 0}

            def rng(n):
                state["n"] += 1
                return bytes([state["n"] % 256]) * n

            return rng

        args = dict(package_id=bytes(32), inner_id=b"id", key_servers=servers, threshold=2, plaintext=b"p")
        assert encrypt(**args, rng=fixed_rng_factory()) == encrypt(**args, rng=fixed_rng_factory())
        assert encrypt(**args) != encrypt(**args)


class TestInputValidation:
    def test_threshold_bounds(self, three_servers):
        _, servers = three_servers
        with pytest.raises(ValueError, match="threshold"):
            encrypt(package_id=bytes(32), inner_id=b"", key_servers=servers, threshold=4, plaintext=b"")
        with pytest.raises(ValueError, match="threshold"):
            encrypt(package_id=bytes(32), inner_id=b"", key_servers=servers, threshold=0, plaintext=b"")

    def test_bad_public_key(self):
        with pytest.raises(InvalidKey, match="96 bytes"):
            KeyServerPublic(bytes(32), b"\x00" * 48)
        bogus = KeyServerPublic(bytes(32), b"\x00" * 96)
        with pytest.raises(InvalidKey, match="not a valid G2"):
            encrypt(package_id=bytes(32), inner_id=b"", key_servers=[bogus], threshold=1, plaintext=b"")

    def test_package_id_length(self, three_servers):
        _, servers = three_servers
        with pytest.raises(ValueError, match="32 bytes"):
            encrypt(package_id=bytes(31), inner_id=b"", key_servers=servers, threshold=1, plaintext=b"")
