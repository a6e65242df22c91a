"""The localnet's Sui world: the object store plus the Move code and the transaction executor on top.

``World`` is what the stand-ins share: ``localnet.object_store`` keeps and persists the state,
``localnet.move`` seeds it the way the Move modules would, ``localnet.execution`` runs signed
transactions against it.
"""

from __future__ import annotations

from localnet import execution, move
from localnet.object_store import ObjectStore, StoredTransaction


class World(ObjectStore):
    """The localnet chain state with seeding helpers that behave like the Move code."""

    def publish_memwal_package(self) -> str:
        return move.publish_package(self, "memwal")

    def publish_walrus_package(self) -> str:
        return move.publish_package(self, "walrus")

    def create_registry(self) -> str:
        return move.create_registry(self)

    def create_account(self, owner: str) -> str:
        return move.create_account(self, owner)

    def add_delegate_key(self, account_id: str, public_key: bytes, label: str) -> None:
        move.add_delegate_key(self, account_id, public_key, label)

    def remove_delegate_key(self, account_id: str, public_key: bytes) -> None:
        move.remove_delegate_key(self, account_id, public_key)

    def set_active(self, account_id: str, active: bool) -> None:
        move.set_active(self, account_id, active)

    def create_blob_object(
        self, blob_id_b64url: str, size: int, owner: str, encoding_type: str = "RS2", end_epoch: int = 1000,
        deletable: bool = True,
    ) -> str:
        return move.create_blob_object(self, blob_id_b64url, size, owner, encoding_type, end_epoch, deletable)

    def register_key_server(self, name: str, url: str, public_key: bytes) -> str:
        return move.register_key_server(self, name, url, public_key)

    def register_independent_v2_key_server(self, name: str, url: str, public_key: bytes) -> str:
        return move.register_independent_v2_key_server(self, name, url, public_key)

    def register_committee_key_server(self, name: str, public_key: bytes, threshold: int,
                                      members: list[tuple[str, str, bytes]]) -> str:
        return move.register_committee_key_server(self, name, public_key, threshold, members)

    def upgrade_key_server_to_v2(self, object_id: str) -> None:
        move.upgrade_to_independent_v2(self, object_id)

    def update_key_server_url(self, object_id: str, url: str) -> None:
        move.update_key_server_url(self, object_id, url)

    def update_committee_member_url(self, object_id: str, party_id: int, url: str) -> None:
        move.update_member_url(self, object_id, party_id, url)

    def fund(self, address: str, amount: int) -> str:
        return move.fund(self, address, amount)

    def apply_transaction(self, tx_bytes: bytes, signatures: list[str]) -> StoredTransaction:
        """Verify and execute a signed ``TransactionData``; raises ``execution.TransactionError``."""
        return execution.apply_transaction(self, tx_bytes, signatures)
