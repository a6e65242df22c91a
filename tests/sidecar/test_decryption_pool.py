"""sidecar.decryption_pool: the worker processes give exactly what serial decryption gives, in order, and a
dead worker costs a rebuild, not the sidecar's ability to decrypt."""

from __future__ import annotations

import os
import signal

import pytest
import pytest_asyncio

from sealcrypto import DecryptError, EncryptedObject, KeyServerPublic, KeyServerSecret, NotEnoughShares, decrypt_objects, encrypt
from sidecar.decryption_pool import DecryptionPool, _chunks

PACKAGE = b"\x11" * 32
OWNERS = [b"\x21" * 32, b"\x22" * 32]


@pytest.fixture(scope="module")
def batch():
    """Seven objects for two identities, one with a tampered share; the keys fetch_keys would have returned."""
    secrets = [KeyServerSecret.generate() for _ in range(3)]
    publics = [KeyServerPublic(bytes([n]) * 32, secret.public_key) for n, secret in enumerate(secrets, 1)]
    objects = [EncryptedObject.from_bytes(encrypt(package_id=PACKAGE, inner_id=OWNERS[n % 2], key_servers=publics,
                                                  threshold=2, plaintext=f"memory {n}".encode()))
               for n in range(7)]
    keys = {public.object_id: {obj.full_id: secret.extract(obj.full_id) for obj in objects}
            for public, secret in list(zip(publics, secrets, strict=True))[:2]}
    return objects, keys


@pytest_asyncio.fixture(loop_scope="session")
async def pool():
    decryption = DecryptionPool(2)
    started = decryption.start()
    assert all(future.result(timeout=120) > 0 for future in started)  # each a worker's pid
    yield decryption
    decryption.close()


class TestSameAsSerial:
    async def test_plaintexts_in_order(self, pool, batch):
        objects, keys = batch
        assert await pool.decrypt(objects, keys) == decrypt_objects(objects, keys)
        assert await pool.decrypt(objects, keys) == [f"memory {n}".encode() for n in range(7)]

    async def test_failures_stay_in_their_places(self, pool, batch):
        objects, keys = batch
        one_server = {server: per_id for server, per_id in list(keys.items())[:1]}
        wrong_keys = {server: {full_id: KeyServerSecret.generate().extract(full_id) for full_id in per_id}
                      for server, per_id in keys.items()}
        mixed = [objects[0], objects[1]]
        outcomes = await pool.decrypt(mixed, one_server)
        assert all(isinstance(outcome, NotEnoughShares) for outcome in outcomes)
        outcomes = await pool.decrypt(mixed, wrong_keys)
        assert all(isinstance(outcome, DecryptError) for outcome in outcomes)

    async def test_without_workers_on_a_thread(self, batch):
        objects, keys = batch
        threaded = DecryptionPool(0)
        assert threaded.start() == [] and threaded.worker_pids() == []
        assert await threaded.decrypt(objects, keys) == decrypt_objects(objects, keys)

    async def test_nothing_to_do(self, pool):
        assert await pool.decrypt([], {}) == []


class TestEncryption:
    @pytest.mark.parametrize("workers", [2, 0])
    async def test_a_worker_encrypts_what_the_keys_decrypt(self, pool, workers):
        secrets = [KeyServerSecret.generate() for _ in range(3)]
        publics = [KeyServerPublic(bytes([n]) * 32, secret.public_key) for n, secret in enumerate(secrets, 1)]
        encrypting = pool if workers else DecryptionPool(0)
        ciphertexts = [await encrypting.encrypt(package_id=PACKAGE, inner_id=OWNERS[0], key_servers=publics,
                                                threshold=2, plaintext=b"the same memory") for _ in range(2)]
        assert ciphertexts[0] != ciphertexts[1]  # fresh randomness in each call, also in a worker
        objects = [EncryptedObject.from_bytes(ciphertext) for ciphertext in ciphertexts]
        keys = {public.object_id: {obj.full_id: secret.extract(obj.full_id) for obj in objects}
                for public, secret in list(zip(publics, secrets, strict=True))[1:]}
        assert decrypt_objects(objects, keys) == [b"the same memory"] * 2


class TestWorkerDeath:
    async def test_a_killed_worker_is_replaced(self, pool, batch):
        objects, keys = batch
        pids = pool.worker_pids()
        assert len(pids) == 2 and os.getpid() not in pids
        os.kill(pids[0], signal.SIGKILL)
        assert await pool.decrypt(objects, keys) == decrypt_objects(objects, keys)
        assert pids[0] not in pool.worker_pids()

    async def test_the_pool_starts_again_after_close(self, batch):
        objects, keys = batch
        decryption = DecryptionPool(1)
        try:
            assert await decryption.decrypt(objects[:2], keys) == decrypt_objects(objects[:2], keys)
            decryption.close()
            assert decryption.worker_pids() == []
            assert await decryption.decrypt(objects[:2], keys) == decrypt_objects(objects[:2], keys)
        finally:
            decryption.close()


class TestChunks:
    @pytest.mark.parametrize(("count", "workers", "sizes"), [(10, 2, [5, 5]), (7, 3, [3, 2, 2]), (1, 4, [1]), (3, 8, [1, 1, 1])])
    def test_nearly_equal_and_in_order(self, count, workers, sizes):
        items = list(range(count))
        chunks = _chunks(items, workers)  # type: ignore[arg-type]
        assert [len(chunk) for chunk in chunks] == sizes
        assert [item for chunk in chunks for item in chunk] == items

    def test_a_negative_worker_count_is_refused(self):
        with pytest.raises(ValueError, match="workers"):
            DecryptionPool(-1)
