"""sidecar.seal_service.SealService against the localnet's key servers: every on-chain record shape (V1, V1
upgraded to V2, V2 only, a V2 committee behind its aggregator), proof of possession before encrypting, and
decrypting old ciphertexts through SEAL_LEGACY_DECRYPT_KEY_SERVERS after a switch to the committee."""

from __future__ import annotations

import os

import httpx
import pytest
import pytest_asyncio

from chain.backends import make_chain_reader
from localnet.cli import create_account
from memwal_common.environment import SealServerConfig
from sealcrypto import EncryptedObject, KeyServerSecret, SessionKey
from sidecar.decryption_pool import DecryptionPool
from sidecar.errors import AccessDenied
from sidecar.key_cache import SessionKeyCache
from sidecar.seal_service import KeyServerMisconfigured, SealService, Undecryptable
from tests.e2e.signing import seal_session_header

pytestmark = pytest.mark.database


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def account(localnet):
    return await create_account(localnet, label="seal-service")


def independent(localnet) -> tuple[SealServerConfig, ...]:
    return tuple(SealServerConfig(server["objectId"]) for server in localnet["seal_key_servers"])


def committee(localnet, *, aggregator: bool = True) -> SealServerConfig:
    return SealServerConfig(localnet["seal_committee"]["objectId"], 1,
                            localnet["seal_committee"]["aggregatorUrl"] if aggregator else None)


@pytest_asyncio.fixture(loop_scope="session")
async def seal(localnet, http):
    """SealService factory; closes the chain readers it made (gRPC channels) at teardown."""
    readers = []
    url = {"graphql": localnet["sui_graphql_url"], "grpc": localnet["sui_grpc_url"], "jsonrpc": localnet["sui_rpc_url"]}

    def make(servers, threshold, *, legacy=(), protocol="graphql", verify=True) -> SealService:
        readers.append(chain := make_chain_reader(url[protocol], protocol=protocol, http=http))
        return SealService(chain=chain, http=http, servers=tuple(servers), threshold=threshold,
                           package_id=localnet["memwal_package_id"], timeout_seconds=10,
                           legacy_decrypt_servers=tuple(legacy), verify_key_servers=verify)
    yield make
    for chain in readers:
        await chain.aclose()


async def decrypt(service: SealService, account, localnet, ciphertexts: dict[str, bytes]) -> dict[str, bytes | Undecryptable]:
    session = service.open_session(seal_session_header(bytes.fromhex(account.delegate_private_key_hex),
                                                       localnet["memwal_package_id"]))
    return await service.decrypt(ciphertexts, account_id=account.account_id, session=session)


class TestRecordShapes:
    @pytest.mark.parametrize("protocol", ["graphql", "grpc", "jsonrpc"])
    async def test_v1_upgraded_and_v2_only_independent_servers(self, localnet, http, account, protocol, seal):
        service = seal(independent(localnet), 3, protocol=protocol)  # all three must answer
        ciphertext = await service.encrypt(b"three shapes", account.owner_address)
        assert [slot.index for slot in EncryptedObject.from_bytes(ciphertext).services] == [1, 2, 3]
        assert await decrypt(service, account, localnet, {"m": ciphertext}) == {"m": b"three shapes"}

    @pytest.mark.parametrize("protocol", ["graphql", "grpc", "jsonrpc"])
    async def test_committee_behind_its_aggregator(self, localnet, http, account, protocol, seal):
        service = seal([committee(localnet)], 1, protocol=protocol)
        ciphertext = await service.encrypt(b"for the committee", account.owner_address)
        obj = EncryptedObject.from_bytes(ciphertext)
        assert [("0x" + slot.object_id.hex(), obj.threshold) for slot in obj.services] == [(localnet["seal_committee"]["objectId"], 1)]
        assert await decrypt(service, account, localnet, {"c": ciphertext}) == {"c": b"for the committee"}

    async def test_a_committee_without_its_aggregator_url_is_refused(self, localnet, http, account, seal):
        service = seal([committee(localnet, aggregator=False)], 1)
        with pytest.raises(KeyServerMisconfigured, match="aggregatorUrl"):
            await service.encrypt(b"x", account.owner_address)


class TestProofOfPossession:
    async def test_a_server_that_does_not_hold_its_on_chain_key_gets_nothing_encrypted(self, localnet, http, account, seal):
        # A KeyServer object whose on-chain key is not the one the server at its URL holds.
        forged = (await http.post(f"{localnet['admin_url']}/_localnet/key-servers", json={
            "name": "forged", "url": localnet["seal_key_servers"][0]["url"],
            "public_key": KeyServerSecret.generate().public_key.hex()})).json()["objectId"]
        servers = [SealServerConfig(forged), *independent(localnet)[1:]]
        with pytest.raises(KeyServerMisconfigured, match="does not prove"):
            await seal(servers, 2).encrypt(b"x", account.owner_address)
        unchecked = await seal(servers, 2, verify=False).encrypt(b"x", account.owner_address)
        assert "0x" + EncryptedObject.from_bytes(unchecked).services[0].object_id.hex() == forged  # what the check prevents


class TestSwitchToTheCommittee:
    """Memories encrypted under the independent pair stay readable after switching to the committee."""

    @pytest_asyncio.fixture(loop_scope="session")
    async def old(self, localnet, http, account, seal):
        pair = independent(localnet)[:2]
        return pair, await seal(pair, 2).encrypt(b"from before the switch", account.owner_address)

    async def test_legacy_list_decrypts_old_and_new_in_one_call(self, localnet, http, account, old, seal):
        pair, old_ciphertext = old
        switched = seal([committee(localnet)], 1, legacy=pair)
        new_ciphertext = await switched.encrypt(b"after the switch", account.owner_address)
        new = EncryptedObject.from_bytes(new_ciphertext)
        assert len(new.services) == 1 and new.threshold == 1  # new memories: the committee only
        assert await decrypt(switched, account, localnet, {"old": old_ciphertext, "new": new_ciphertext}) == {
            "old": b"from before the switch", "new": b"after the switch"}

    async def test_thresholds_come_from_each_ciphertext(self, localnet, http, account, old, seal):
        pair, old_ciphertext = old
        assert EncryptedObject.from_bytes(old_ciphertext).threshold == 2
        # configured threshold 1 (the committee's), yet the old object needs both legacy servers
        switched = seal([committee(localnet)], 1, legacy=pair[:1])
        assert await decrypt(switched, account, localnet, {"old": old_ciphertext}) == {"old": Undecryptable.UNKNOWN_KEY_SERVERS}

    async def test_without_the_legacy_list_old_memories_are_lost(self, localnet, http, account, old, seal):
        _, old_ciphertext = old
        switched = seal([committee(localnet)], 1)
        assert await decrypt(switched, account, localnet, {"old": old_ciphertext}) == {"old": Undecryptable.UNKNOWN_KEY_SERVERS}

    async def test_legacy_servers_are_never_encrypted_to(self, localnet, http, account, old, seal):
        pair, _ = old
        switched = seal([committee(localnet)], 1, legacy=pair)
        services = EncryptedObject.from_bytes(await switched.encrypt(os.urandom(8), account.owner_address)).services
        assert {"0x" + slot.object_id.hex() for slot in services} == {localnet["seal_committee"]["objectId"]}


async def test_unknown_key_server_object_is_misconfigured(localnet, account, seal):
    service = seal([SealServerConfig(localnet["memwal_registry_id"])], 1)
    with pytest.raises(KeyServerMisconfigured, match="not usable"):
        await service.encrypt(b"x", account.owner_address)


class TestSessionKeyCache:
    """A session's second recall of the same owner's memories skips the key servers; nothing else does."""

    @pytest_asyncio.fixture(loop_scope="session")
    async def counted(self, localnet):
        """(SealService with a key cache and a decryption pool, {"fetch_key": calls seen by the key servers})."""
        calls = {"fetch_key": 0}

        async def count(request: httpx.Request) -> None:
            calls["fetch_key"] += request.url.path.endswith("/v1/fetch_key")

        pool = DecryptionPool(2)
        async with httpx.AsyncClient(event_hooks={"request": [count]}) as http:
            chain = make_chain_reader(localnet["sui_graphql_url"], protocol="graphql", http=http)
            service = SealService(chain=chain, http=http, servers=independent(localnet)[:2], threshold=2,
                                  package_id=localnet["memwal_package_id"], timeout_seconds=10,
                                  key_cache=SessionKeyCache(64), decryption=pool)
            try:
                yield service, calls
            finally:
                pool.close()
                await chain.aclose()

    async def test_the_same_session_skips_the_key_servers(self, localnet, account, counted):
        service, calls = counted
        ciphertexts = {f"m{n}": await service.encrypt(f"memory {n}".encode(), account.owner_address) for n in range(3)}
        session = new_session(service, account, localnet)
        first = await service.decrypt(ciphertexts, account_id=account.account_id, session=session)
        after_first = calls["fetch_key"]
        assert after_first == 2  # one request to each of the two servers
        again = await service.decrypt(ciphertexts, account_id=account.account_id, session=session)
        assert again == first == {f"m{n}": f"memory {n}".encode() for n in range(3)}
        assert calls["fetch_key"] == after_first
        newer = await service.encrypt(b"written after the first recall", account.owner_address)
        assert await service.decrypt({"new": newer}, account_id=account.account_id, session=session) == {
            "new": b"written after the first recall"}
        assert calls["fetch_key"] == after_first  # same owner, same identity: still cached

    async def test_another_session_asks_the_key_servers(self, localnet, account, counted):
        service, calls = counted
        ciphertext = await service.encrypt(b"one memory", account.owner_address)
        await service.decrypt({"m": ciphertext}, account_id=account.account_id, session=new_session(service, account, localnet))
        before = calls["fetch_key"]
        other = new_session(service, account, localnet)  # the same delegate, a new session key
        assert await service.decrypt({"m": ciphertext}, account_id=account.account_id, session=other) == {"m": b"one memory"}
        assert calls["fetch_key"] == before + 2

    async def test_the_same_session_for_another_account_is_decided_by_the_key_servers(self, localnet, account, counted):
        service, calls = counted
        stranger = await create_account(localnet, label="seal-service-stranger")
        ciphertext = await service.encrypt(b"not the stranger's", account.owner_address)
        session = new_session(service, account, localnet)
        assert await service.decrypt({"m": ciphertext}, account_id=account.account_id, session=session) == {"m": b"not the stranger's"}
        before = calls["fetch_key"]
        with pytest.raises(AccessDenied):  # the delegate of `account` is nobody in the stranger's account
            await service.decrypt({"m": ciphertext}, account_id=stranger.account_id, session=session)
        assert calls["fetch_key"] > before

    async def test_a_stranger_session_never_reads_a_cached_owner_key(self, localnet, account, counted):
        service, calls = counted
        stranger = await create_account(localnet, label="seal-service-thief")
        ciphertext = await service.encrypt(b"owner only", account.owner_address)
        await service.decrypt({"m": ciphertext}, account_id=account.account_id, session=new_session(service, account, localnet))
        before = calls["fetch_key"]
        thief = new_session(service, stranger, localnet)
        with pytest.raises(AccessDenied):  # naming the owner's account with the stranger's own session
            await service.decrypt({"m": ciphertext}, account_id=account.account_id, session=thief)
        assert calls["fetch_key"] > before


def new_session(service: SealService, account, localnet) -> SessionKey:
    return service.open_session(seal_session_header(bytes.fromhex(account.delegate_private_key_hex),
                                                    localnet["memwal_package_id"]))
