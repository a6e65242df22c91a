"""On-chain blob discovery for restore: the owner's Blob objects tagged for this package and namespace.

Unlike upstream's recent-transactions path (≤ 100 candidates, silently incomplete), this walks every
Blob the owner holds, so restore after a wiped database finds all of them; ``capped`` says when the
safety cap on the walk was hit.
"""

from __future__ import annotations

from chain.address import normalize_address
from chain.errors import ChainError
from chain.reader import ChainReader
from sidecar.errors import UpstreamUnavailable
from sidecar.protocol import MAX_QUERY_BLOBS, SESSION_ID_TAG, TaggedBlob

MAX_OWNED_BLOBS = MAX_QUERY_BLOBS  # a reply lists at most this many

async def query_blobs(chain: ChainReader, *, owner: str, namespace: str, package_id: str, walrus_package_id: str) -> tuple[list[TaggedBlob], bool]:
    try:
        owned = await chain.owned_blobs(normalize_address(owner), walrus_package_id)
    except ChainError as exc:
        raise UpstreamUnavailable(f"chain unavailable: {exc}") from None
    capped = len(owned) > MAX_OWNED_BLOBS
    wanted_package = normalize_address(package_id)
    matches = []
    for blob in owned[:MAX_OWNED_BLOBS]:
        tagged_package = blob.metadata.get("memwal_package_id")
        if not tagged_package or SESSION_ID_TAG in blob.metadata:
            continue  # untagged blobs belong to nobody's index; session-chain frames are not memories
        try:
            if normalize_address(tagged_package) != wanted_package:
                continue
        except ValueError:
            continue
        blob_namespace = blob.metadata.get("memwal_namespace") or "default"
        if blob_namespace == namespace:
            matches.append(TaggedBlob(blob.blob_id, blob.object_id, blob_namespace, wanted_package))
    return matches, capped
