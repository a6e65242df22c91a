"""Where Sui stores a dynamic field: its object id, derived from the parent, the name's type and BCS.

``id = BLAKE2b-256(0xf0 ‖ parent ‖ u64_le(len(name_bcs)) ‖ name_bcs ‖ bcs(TypeTag of the name))``
(sui-types ``derive_dynamic_field_id``). The gRPC API has no "dynamic field by name" call, so the gRPC
backend derives the id and reads the field object; the localnet derives ids the same way.
"""

from __future__ import annotations

import hashlib
import struct

from chain import bcs
from chain.address import normalize_address

CHILD_OBJECT_ID_SCOPE = 0xF0  # sui-types HashingIntentScope::ChildObjectId
MAX_TYPE_DEPTH = 16
MAX_TYPE_TEXT = 1024
# sui-types TypeTag variant indices
_PRIMITIVE_TAGS = {"bool": 0, "u8": 1, "u64": 2, "u128": 3, "address": 4, "signer": 5, "u16": 8, "u32": 9, "u256": 10}
_VECTOR_TAG = 6
_STRUCT_TAG = 7


def dynamic_field_id(parent: str, name_type: str, name_bcs: bytes) -> str:
    """The object id of ``parent``'s dynamic field named by ``name_bcs`` of Move type ``name_type``."""
    digest = hashlib.blake2b(digest_size=32)
    digest.update(bytes([CHILD_OBJECT_ID_SCOPE]))
    digest.update(bcs.address(normalize_address(parent)))
    digest.update(struct.pack("<Q", len(name_bcs)))
    digest.update(bytes(name_bcs))
    digest.update(type_tag_bcs(name_type))
    return "0x" + digest.hexdigest()


def type_tag_bcs(type_name: str) -> bytes:
    """BCS of the ``TypeTag`` for a Move type string such as ``u64``, ``vector<u8>`` or ``0x2::object::ID``."""
    if len(type_name) > MAX_TYPE_TEXT:
        raise ValueError("Move type string is too long")
    parser = _TypeParser(type_name.replace(" ", ""))
    encoded = parser.parse(0)
    if parser.position != len(parser.text):
        raise ValueError(f"trailing characters in Move type {type_name!r}")
    return encoded


class _TypeParser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.position = 0

    def parse(self, depth: int) -> bytes:
        if depth > MAX_TYPE_DEPTH:
            raise ValueError("Move type is nested too deeply")
        head = self._identifier()
        if head in _PRIMITIVE_TAGS:
            return bytes([_PRIMITIVE_TAGS[head]])
        if head == "vector":
            self._expect("<")
            inner = self.parse(depth + 1)
            self._expect(">")
            return bytes([_VECTOR_TAG]) + inner
        address = normalize_address(head)
        self._expect("::")
        module = self._identifier()
        self._expect("::")
        name = self._identifier()
        arguments: list[bytes] = []
        if self._peek("<"):
            self._expect("<")
            arguments.append(self.parse(depth + 1))
            while self._peek(","):
                self._expect(",")
                arguments.append(self.parse(depth + 1))
            self._expect(">")
        return bytes([_STRUCT_TAG]) + bcs.address(address) + bcs.string(module) + bcs.string(name) + bcs.vector(arguments)

    def _identifier(self) -> str:
        start = self.position
        while self.position < len(self.text) and (self.text[self.position].isalnum() or self.text[self.position] == "_"):
            self.position += 1
        if start == self.position:
            raise ValueError(f"expected a name at position {start} of {self.text!r}")
        return self.text[start : self.position]

    def _peek(self, token: str) -> bool:
        return self.text.startswith(token, self.position)

    def _expect(self, token: str) -> None:
        if not self._peek(token):
            raise ValueError(f"expected {token!r} at position {self.position} of {self.text!r}")
        self.position += len(token)
