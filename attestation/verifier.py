"""Verify a Nitro attestation document, step by step.

Procedure of :meth:`Verifier.verify` (each step raises its own error):

    (1) decode     strict COSE_Sign1 + payload bounds                     → DecodeError
    (2) chain      leaf → cabundle[n-1..1] → pinned root, at time T       → CertificateChainError
    (3) signature  ES384 over Sig_structure with the leaf's P-384 key     → SignatureError
    (4) freshness  timestamp within [T - max_age, T + skew]; nonce        → FreshnessError
    (5) policy     debug-mode rejection (default), then the caller's      → PolicyError

The caller MUST choose T: ``verify_live`` uses the current time (pass it in),
``verify_archived`` uses the document's own signed timestamp. Nothing below
this API reads the clock.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from datetime import datetime, timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from .chain import verify_chain
from .cose import ES384_SIGNATURE_SIZE
from .document import AttestationDocument, VerifiedDocument
from .errors import FreshnessError, SignatureError
from .policy import Policy, RejectDebugMode, allows_debug_mode
from .trust import TrustRoot

DEFAULT_MAX_AGE = timedelta(minutes=5)
# Clock difference tolerated between the enclave's NSM and the verifier.
MAX_CLOCK_SKEW = timedelta(seconds=30)

Observer = Callable[[str], None]


def _ignore(step: str) -> None:
    pass


class Verifier:
    """Verifies attestation documents against one pinned root."""

    def __init__(self, *, trust_root: TrustRoot) -> None:
        self.trust_root = trust_root

    @classmethod
    def aws(cls) -> Verifier:
        """A verifier anchored in the packaged AWS Nitro Enclaves root G1."""
        return cls(trust_root=TrustRoot.aws())

    def verify(
        self,
        raw: bytes,
        *,
        policy: Policy,
        at: datetime,
        nonce: bytes | None,
        max_age: timedelta | None,
        skew: timedelta = MAX_CLOCK_SKEW,
        observer: Observer = _ignore,
    ) -> VerifiedDocument:
        """Run steps (1)–(5) with the chain checked at ``at``; return the verified document.

        ``observer`` receives one line per completed step (the CLI prints them).
        """
        _require_aware(at)
        # (1): decode. Everything read here is unverified until step (3).
        document = AttestationDocument.from_cose(raw)
        observer(
            f"decode: COSE_Sign1 ES384, {len(document.envelope.payload)}-byte payload, "
            f"module {document.unverified_module_id}"
        )
        self._verify_signed(document, at=at, observer=observer)
        verified = VerifiedDocument._from_checked(document, verified_at=at)
        # (4): freshness, from the now-authenticated timestamp and nonce.
        _check_freshness(verified, at=at, nonce=nonce, max_age=max_age, skew=skew)
        observer(f"freshness: signed at {verified.timestamp.isoformat()}" + (", nonce matches" if nonce else ""))
        # (5): policy. Debug-mode documents are refused unless the policy opts out by name.
        if not allows_debug_mode(policy):
            RejectDebugMode().verify(verified)
        policy.verify(verified)
        observer(f"policy: {type(policy).__name__} satisfied")
        return verified

    def verify_live(
        self,
        raw: bytes,
        *,
        policy: Policy,
        nonce: bytes | None,
        now: datetime,
        max_age: timedelta = DEFAULT_MAX_AGE,
        skew: timedelta = MAX_CLOCK_SKEW,
        observer: Observer = _ignore,
    ) -> VerifiedDocument:
        """Verify a document just received from an enclave, as of ``now``.

        The chain is checked at ``now``, except that a document dated up to
        ``skew`` ahead of our clock is checked at its own timestamp: a leaf
        issued a moment ago must not look "not yet valid" because our clock is
        slightly behind. A document dated further ahead is refused up front.
        """
        _require_aware(now)
        timestamp = AttestationDocument.from_cose(raw).unverified_timestamp
        if timestamp > now + skew:
            # Rejecting on an unverified value is safe, and names the real problem (a clock)
            # instead of a misleading "certificate not yet valid" from step (2).
            raise FreshnessError(f"document is dated {timestamp.isoformat()}, after {now.isoformat()} + skew")
        chain_time = max(now, timestamp)
        return self.verify(
            raw, policy=policy, at=chain_time, nonce=nonce, max_age=max_age, skew=skew, observer=observer
        )

    def verify_archived(
        self, raw: bytes, *, policy: Policy, nonce: bytes | None = None, observer: Observer = _ignore
    ) -> VerifiedDocument:
        """Verify a stored document as of its own signed timestamp (no age limit).

        Using the unverified timestamp as T is safe: step (3) then proves the
        leaf that was valid at T signed exactly that timestamp.
        """
        at = AttestationDocument.from_cose(raw).unverified_timestamp
        return self.verify(raw, policy=policy, at=at, nonce=nonce, max_age=None, observer=observer)

    def _verify_signed(self, document: AttestationDocument, *, at: datetime, observer: Observer) -> None:
        # (2): chain at T; cabundle[0] must equal the pinned root but is never the anchor.
        leaf = verify_chain(
            leaf_der=document.unverified_certificate,
            cabundle=document.unverified_cabundle,
            trust_root=self.trust_root,
            at=at,
        )
        observer(
            f"chain: {len(document.unverified_cabundle) + 1} certificates up to the pinned root "
            f"{self.trust_root.fingerprint.hex()[:16]}… valid at {at.isoformat()}"
        )
        # (3): ES384 over Sig_structure with the leaf's P-384 key; COSE carries raw r||s.
        public_key = leaf.public_key()
        if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(public_key.curve, ec.SECP384R1):
            raise SignatureError("leaf certificate key is not an ECDSA P-384 key")
        half = ES384_SIGNATURE_SIZE // 2
        signature = document.envelope.signature
        der_signature = encode_dss_signature(
            int.from_bytes(signature[:half], "big"), int.from_bytes(signature[half:], "big")
        )
        try:
            public_key.verify(der_signature, document.envelope.signed_bytes(), ec.ECDSA(hashes.SHA384()))
        except InvalidSignature:
            raise SignatureError("COSE ES384 signature does not verify with the leaf certificate key") from None
        observer("signature: ES384 over Sig_structure verifies with the leaf's P-384 key")


def _check_freshness(
    document: VerifiedDocument, *, at: datetime, nonce: bytes | None, max_age: timedelta | None, skew: timedelta
) -> None:
    if document.timestamp > at + skew:
        raise FreshnessError(f"document is dated {document.timestamp.isoformat()}, after {at.isoformat()} + skew")
    if max_age is not None and at - document.timestamp > max_age:
        raise FreshnessError(f"document is older than {max_age} (signed {document.timestamp.isoformat()})")
    if nonce is not None:
        if document.nonce is None:
            raise FreshnessError("document carries no nonce, but one was expected")
        if not hmac.compare_digest(document.nonce, nonce):
            raise FreshnessError("document nonce does not match the expected nonce")


def _require_aware(moment: datetime) -> None:
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise ValueError("verification time must be a timezone-aware datetime")
