"""Server-wallet keys. The only module that holds raw private keys; tests forbid importing it elsewhere.

Keys are chosen per job by a stable hash, so a retried job signs with the wallet that owns its blob.
"""

from __future__ import annotations

import hashlib

import nacl.signing

from chain.address import sui_address
from chain.keys import decode_sui_private_key
from chain.transactions import BlobTags, build_blob_transfers_transaction, build_gas_split_transaction


class WalletPool:
    __slots__ = ("_addresses", "_next", "_seeds")

    def __init__(self, encoded_keys: list[str]) -> None:
        if not encoded_keys:
            raise ValueError("at least one server wallet key is required")
        self._seeds = [decode_sui_private_key(text) for text in encoded_keys]
        self._addresses = [sui_address(bytes(nacl.signing.SigningKey(seed).verify_key)) for seed in self._seeds]
        self._next = 0

    def __repr__(self) -> str:
        return f"WalletPool({len(self._seeds)} keys: {', '.join(self._addresses)})"

    def __len__(self) -> int:
        return len(self._seeds)

    @property
    def addresses(self) -> list[str]:
        return list(self._addresses)

    def index_for(self, job_id: str | None) -> int:
        if job_id:
            return int.from_bytes(hashlib.sha256(job_id.encode("utf-8")).digest()[:4], "big") % len(self._seeds)
        index = self._next
        self._next = (self._next + 1) % len(self._seeds)
        return index

    def address(self, index: int) -> str:
        return self._addresses[index]

    def build_blob_transfers(self, index: int, **kwargs) -> tuple[bytes, str]:
        """Build and sign a metadata+transfer transaction (one or several Blobs) with wallet ``index``."""
        return build_blob_transfers_transaction(seed=self._seeds[index], **kwargs)

    def build_gas_split(self, index: int, **kwargs) -> tuple[bytes, str]:
        """Build and sign a gas-coin split with wallet ``index``."""
        return build_gas_split_transaction(seed=self._seeds[index], **kwargs)


__all__ = ["BlobTags", "WalletPool"]
