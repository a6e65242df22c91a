"""Which Seal objects a caller may store with /api/remember/manual: only ones encrypted for itself.

MemWal #369: before the July 2026 ``seal_approve`` fix, a delegate of *any* account could fetch keys for any
identity, so a caller could copy another user's public ciphertext into its own index and recall it with its own
session. The fixed rule binds the identity to the account owner (``has_suffix(id, bcs(owner))``). We refuse such
a copy at the door too, whatever rule the key servers run: the object's package must be this deployment's and
its inner id must end with the caller's own address bytes (relayer writes use the owner address as the id, the
SDK's manual writes ``namespace ‖ owner``). Only the header is read — the relayer never decrypts.
"""

from __future__ import annotations

from chain.address import normalize_address
from relayer.errors import ForeignCiphertext, InvalidValue
from sealcrypto.encrypted_object import EncryptedObject
from sealcrypto.errors import InvalidCiphertext

ADDRESS_BYTES = 32


def check_own_seal_object(ciphertext: bytes, *, owner: str, package_id: str) -> EncryptedObject:
    """The parsed header of ``ciphertext``; InvalidValue (400) if it is no Seal object, ForeignCiphertext (403)
    if it is encrypted for another identity or under another package."""
    try:
        encrypted = EncryptedObject.from_bytes(ciphertext, max_bytes=len(ciphertext))
    except InvalidCiphertext as exc:
        raise InvalidValue(f"`encrypted_data` is not a Seal EncryptedObject: {exc}") from None
    if encrypted.package_id != bytes.fromhex(normalize_address(package_id)[2:]):
        raise ForeignCiphertext(
            f"`encrypted_data` is encrypted under package 0x{encrypted.package_id.hex()}, not this relayer's {package_id}"
        )
    if not encrypted.inner_id.endswith(bytes.fromhex(normalize_address(owner)[2:])):
        raise ForeignCiphertext(
            "`encrypted_data` is not encrypted for your identity: its Seal id must end with your account owner's "
            "address (you can only store memories encrypted for yourself)"
        )
    return encrypted
