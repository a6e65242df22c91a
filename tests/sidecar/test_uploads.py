"""sidecar.uploads.UploadService: upload, tag and transfer on the localnet; one blob object per job id."""

from __future__ import annotations

import os

import pytest

from chain.jsonrpc import JsonRpcChainReader
from sidecar._keys import WalletPool  # the sidecar's own construction path (sidecar/__main__.py)
from sidecar.uploads import UploadService
from sidecar.walrus import WalrusClient

pytestmark = pytest.mark.database


def service(localnet, http) -> tuple[UploadService, JsonRpcChainReader]:
    chain = JsonRpcChainReader(localnet["sui_rpc_url"], http=http)
    walrus = WalrusClient(http=http, publisher_url=localnet["walrus_publisher_url"],
                          aggregator_urls=tuple(localnet["walrus_aggregator_urls"]), race_after_ms=50,
                          timeout_seconds=10, max_blob_bytes=1024 * 1024)
    uploads = UploadService(chain=chain, walrus=walrus, wallets=WalletPool(list(localnet["server_wallet_keys"])),
                            walrus_package_id=localnet["walrus_package_id"], gas_budget=50_000_000, concurrency=2)
    return uploads, chain


def new_owner() -> str:
    return "0x" + os.urandom(32).hex()


class TestUploadService:
    async def test_upload_tags_and_transfers_to_the_owner(self, localnet, http):
        uploads, chain = service(localnet, http)
        owner = new_owner()
        result = await uploads.upload(os.urandom(200), owner=owner, namespace="ns", package_id=localnet["memwal_package_id"],
                                      epochs=1, job_id="job-1-" + os.urandom(4).hex(), agent_id="agent")
        assert result.transfer_status == "ok"
        [blob] = await chain.owned_blobs(owner, localnet["walrus_package_id"])
        assert (blob.object_id, blob.blob_id) == (result.object_id, result.blob_id)
        assert blob.metadata.get("memwal_namespace") == "ns" or "ns" in blob.metadata.values()
        assert uploads.active == 0

    async def test_same_job_twice_gives_one_blob_object(self, localnet, http):
        uploads, chain = service(localnet, http)
        owner, data, job_id = new_owner(), os.urandom(300), "job-" + os.urandom(8).hex()
        kwargs = dict(owner=owner, namespace="default", package_id=localnet["memwal_package_id"], epochs=1,
                      job_id=job_id, agent_id=None)
        first = await uploads.upload(data, **kwargs)
        wallet = uploads._wallets.address(uploads._wallets.index_for(job_id))
        before = await chain.gas_coins(wallet)
        second = await uploads.upload(data, **kwargs)  # a retry after a crash: already transferred
        assert (second.blob_id, second.object_id) == (first.blob_id, first.object_id)
        blobs = await chain.owned_blobs(owner, localnet["walrus_package_id"])
        assert [b.blob_id for b in blobs] == [first.blob_id]
        assert await chain.gas_coins(wallet) == before  # no second transaction was paid for

    async def test_same_content_for_two_owners_gives_two_objects(self, localnet, http):
        uploads, chain = service(localnet, http)
        data = os.urandom(128)
        first_owner, second_owner = new_owner(), new_owner()
        common = dict(namespace="n", package_id=localnet["memwal_package_id"], epochs=1, agent_id=None)
        first = await uploads.upload(data, owner=first_owner, job_id="a-" + os.urandom(4).hex(), **common)
        second = await uploads.upload(data, owner=second_owner, job_id="b-" + os.urandom(4).hex(), **common)
        assert first.blob_id == second.blob_id and first.object_id != second.object_id
        assert [b.object_id for b in await chain.owned_blobs(second_owner, localnet["walrus_package_id"])] == [second.object_id]
