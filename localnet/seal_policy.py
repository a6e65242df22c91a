"""MemWal's ``account::seal_approve`` access predicate, evaluated in Python by the localnet key server.

The real key server dry-runs the PTB on a full node with ``sender = certificate.user``; the stand-in
applies the same Move logic (MemWal ``account.move``): the account must exist and be active, then
access is granted when (sender is the owner AND id ends with the owner's 32 address bytes) OR
sender is one of the account's delegate addresses.

Before July 2026 upstream's delegate branch ignored ``id`` (MemWal issue #369): any delegate of any
active account could fetch keys for any owner's identity. The fix (MemWal PR #371) checks the suffix on
the delegate branch too; that is the default here. ``fixed_policy=False`` runs the old rule, for
compatibility tests against deployments of the old contract.
"""

from __future__ import annotations

from dataclasses import dataclass

from chain.address import normalize_address

ADDRESS_BYTES = 32


@dataclass(frozen=True)
class AccountView:
    """The fields of a ``MemWalAccount`` the predicate reads (addresses are ``0x`` + 64 hex)."""

    account_id: str
    owner: str
    active: bool
    delegate_addresses: tuple[str, ...] = ()

    @classmethod
    def from_account(cls, account: object) -> AccountView:
        """Build from a ``chain.reader.Account`` (anything with those attribute names)."""
        return cls(
            account_id=normalize_address(account.account_id),  # type: ignore[attr-defined]
            owner=normalize_address(account.owner),  # type: ignore[attr-defined]
            active=bool(account.active),  # type: ignore[attr-defined]
            delegate_addresses=tuple(
                normalize_address(key.sui_address) for key in account.delegate_keys  # type: ignore[attr-defined]
            ),
        )


def seal_approve_allows(
    account: AccountView | None, inner_id: bytes, sender: str, *, fixed_policy: bool = True
) -> bool:
    """Whether ``seal_approve(inner_id, account)`` would return without aborting for ``sender``."""
    if account is None or not account.active:
        return False
    sender = normalize_address(sender)
    owner = normalize_address(account.owner)
    id_matches_owner = bytes(inner_id).endswith(bytes.fromhex(owner[2:]))
    if sender == owner and id_matches_owner:
        return True
    is_delegate = sender in {normalize_address(address) for address in account.delegate_addresses}
    if fixed_policy:
        return is_delegate and id_matches_owner
    return is_delegate
