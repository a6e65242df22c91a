"""Open stored memories: read each blob (Redis cache, raced aggregators), then Seal-decrypt them together.

Only plaintext (and each ciphertext's size, for quota) goes back to the relayer. The session is checked
before anything is downloaded; all distinct identities share one key fetch.
"""

from __future__ import annotations

from sidecar.protocol import BlobStatus, OpenBlobsReply, OpenBlobsRequest, OpenedBlob
from sidecar.seal_service import SealService, Undecryptable
from sidecar.walrus import WalrusClient


class BlobOpener:
    def __init__(self, *, walrus: WalrusClient, seal: SealService) -> None:
        self._walrus = walrus
        self._seal = seal

    async def open(self, request: OpenBlobsRequest) -> OpenBlobsReply:
        self._seal.check_package(request.package_id)
        session = self._seal.open_session(request.session)
        fetched = await self._walrus.read_many(list(request.blob_ids))
        ciphertexts = {blob_id: fetch.data for blob_id, fetch in fetched.items() if fetch.data is not None}
        plaintexts = (
            await self._seal.decrypt(ciphertexts, account_id=request.account_id, session=session) if ciphertexts else {}
        )
        opened = []
        for blob_id in request.blob_ids:
            fetch = fetched[blob_id]
            if fetch.data is None:
                status = BlobStatus.NOT_FOUND if fetch.status == "not_found" else BlobStatus.UNAVAILABLE
                opened.append(OpenedBlob(blob_id, status))
                continue
            plaintext = plaintexts[blob_id]
            if plaintext is Undecryptable.CORRUPT:
                opened.append(OpenedBlob(blob_id, BlobStatus.CORRUPT))
            elif isinstance(plaintext, Undecryptable):
                # Intact, but this deployment cannot reach its key servers: never a reason to drop the memory.
                opened.append(OpenedBlob(blob_id, BlobStatus.UNAVAILABLE))
            else:
                opened.append(OpenedBlob(blob_id, BlobStatus.OPENED, plaintext, len(fetch.data)))
        return OpenBlobsReply(tuple(opened))
