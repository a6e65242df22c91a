"""Policies: what a verified document must say for the caller to trust it.

A policy is any object with ``verify(document) -> None`` that raises
:class:`PolicyError`. Composition fails closed: ``AllOf([])`` and
``AnyOf([])`` always raise, because an empty list is far more likely a bug
than a wish to accept everything. Permissive policies are named ``Unsafe*``
and log a warning every time they are used.

The verifier runs :class:`RejectDebugMode` before the caller's policy unless
the policy is (or is an ``AllOf`` containing) :class:`UnsafeAllowDebugMode`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Mapping, Sequence
from typing import Protocol

from .document import PCR_INDEX_LIMIT, PCR_VALUE_LENGTHS, VerifiedDocument
from .errors import PolicyError

logger = logging.getLogger(__name__)

DEBUG_MODE_PCRS = (0, 1, 2)


class Policy(Protocol):
    """Anything with ``verify(document) -> None`` that raises PolicyError on failure."""

    def verify(self, document: VerifiedDocument) -> None:
        """Return if ``document`` satisfies the policy, raise :class:`PolicyError` otherwise."""


class PCRs:
    """Each listed PCR must be present and equal to its expected value."""

    def __init__(self, expected: Mapping[int, bytes]) -> None:
        if not expected:
            raise ValueError("PCRs policy needs at least one expected PCR")
        for index, value in expected.items():
            if not isinstance(index, int) or not 0 <= index < PCR_INDEX_LIMIT:
                raise ValueError(f"PCR index {index!r} is not in 0..{PCR_INDEX_LIMIT - 1}")
            if not isinstance(value, bytes) or len(value) not in PCR_VALUE_LENGTHS:
                raise ValueError(f"expected PCR{index} must be 32, 48 or 64 bytes")
        self.expected = dict(sorted(expected.items()))

    def verify(self, document: VerifiedDocument) -> None:
        for index, value in self.expected.items():
            actual = document.pcrs.get(index)
            if actual is None:
                raise PolicyError(f"PCR{index} is missing from the document")
            if not hmac.compare_digest(actual, value):
                raise PolicyError(f"PCR{index} mismatch: expected {value.hex()}, got {actual.hex()}")


class RejectDebugMode:
    """Debug-mode enclaves report PCR0, PCR1 and PCR2 as all zeros: refuse them."""

    def verify(self, document: VerifiedDocument) -> None:
        values = [document.pcrs.get(index) for index in DEBUG_MODE_PCRS]
        if all(value is not None and not any(value) for value in values):
            raise PolicyError("document comes from a debug-mode enclave (PCR0, PCR1 and PCR2 are all zero)")


class UnsafeAllowDebugMode:
    """Lets debug-mode documents through the verifier's default check. Tests only."""

    def verify(self, document: VerifiedDocument) -> None:
        logger.warning("UnsafeAllowDebugMode: debug-mode attestation documents are accepted")


class UnsafeNoOp:
    """Accepts every document. Tests only."""

    def verify(self, document: VerifiedDocument) -> None:
        logger.warning("UnsafeNoOp: the attestation document is accepted without any policy check")


class _ExactField:
    field = ""

    def __init__(self, expected: bytes) -> None:
        if not isinstance(expected, bytes):
            raise TypeError(f"expected {self.field} must be bytes")
        self.expected = expected

    def verify(self, document: VerifiedDocument) -> None:
        actual = getattr(document, self.field)
        if actual is None:
            raise PolicyError(f"document has no {self.field}")
        if not hmac.compare_digest(actual, self.expected):
            raise PolicyError(f"{self.field} does not match the expected value")


class Nonce(_ExactField):
    """The document's nonce must equal ``expected``."""

    field = "nonce"


class UserData(_ExactField):
    """The document's user_data must equal ``expected``."""

    field = "user_data"


class PublicKey(_ExactField):
    """The document's public_key must equal ``expected``."""

    field = "public_key"


class UserDataDigest(UserData):
    """The document's user_data must equal ``hash(content)`` (sha256, sha384 or sha512)."""

    ALGORITHMS = ("sha256", "sha384", "sha512")

    def __init__(self, content: bytes, *, algorithm: str = "sha256") -> None:
        if algorithm not in self.ALGORITHMS:
            raise ValueError(f"algorithm must be one of {self.ALGORITHMS}")
        super().__init__(hashlib.new(algorithm, content).digest())


class AllOf:
    """Every child policy must pass."""

    def __init__(self, children: Sequence[Policy]) -> None:
        self.children = tuple(children)

    def verify(self, document: VerifiedDocument) -> None:
        # An empty AllOf would accept everything: a likely API misuse, so fail closed.
        if not self.children:
            raise PolicyError("AllOf([]) has no policies and fails closed")
        for child in self.children:
            child.verify(document)


class AnyOf:
    """At least one child policy must pass."""

    def __init__(self, children: Sequence[Policy]) -> None:
        self.children = tuple(children)

    def verify(self, document: VerifiedDocument) -> None:
        failures = []
        for child in self.children:
            try:
                child.verify(document)
                return
            except PolicyError as error:
                failures.append(str(error))
        raise PolicyError(f"0 of {len(self.children)} policies succeeded: {failures}")


def allows_debug_mode(policy: Policy) -> bool:
    """True if ``policy`` is UnsafeAllowDebugMode or an AllOf that (recursively) contains one."""
    if isinstance(policy, UnsafeAllowDebugMode):
        return True
    if isinstance(policy, AllOf):
        return any(allows_debug_mode(child) for child in policy.children)
    return False
