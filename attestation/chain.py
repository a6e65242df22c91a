"""Certificate chain check: leaf → cabundle[n-1] … cabundle[1] → pinned root, at time T.

Path building and signature/validity/basicConstraints/pathLen checks are done
by cryptography's verifier (``PolicyBuilder``), never by hand. Nitro specifics:

* ``cabundle[0]`` must be byte-identical to the pinned root, but it is never
  used as the anchor: only the pinned root is in the ``Store``.
* The leaf has no subjectAltName, no extendedKeyUsage and no
  authorityKeyIdentifier, so the WebPKI end-entity profile would refuse it.
  We use a Nitro end-entity profile instead: basicConstraints critical with
  CA=false and keyUsage with digitalSignature, everything else permitted.
  CA certificates keep the WebPKI CA profile (keyCertSign, pathLen …).
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.x509.verification import Criticality, ExtensionPolicy, PolicyBuilder, Store, VerificationError

from .errors import CertificateChainError
from .trust import TrustRoot

MAX_CHAIN_DEPTH = 8


def verify_chain(*, leaf_der: bytes, cabundle: Sequence[bytes], trust_root: TrustRoot, at: datetime) -> x509.Certificate:
    """Verify the document's chain at ``at``; return the leaf certificate."""
    if at.tzinfo is None:
        raise ValueError("verification time must be timezone-aware")
    if not cabundle or not hmac.compare_digest(cabundle[0], trust_root.der):
        raise CertificateChainError("cabundle[0] is not the pinned root certificate")
    leaf = _load_der("leaf certificate", leaf_der)
    intermediates = [_load_der(f"cabundle[{index}]", der) for index, der in enumerate(cabundle) if index > 0]
    verifier = (
        PolicyBuilder()
        .store(Store([trust_root.certificate]))
        .time(at)
        .max_chain_depth(MAX_CHAIN_DEPTH)
        .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=_nitro_end_entity_policy())
        .build_client_verifier()
    )
    try:
        verifier.verify(leaf, intermediates)
    except VerificationError as error:
        raise CertificateChainError(f"certificate chain does not verify at {at.isoformat()}: {error}") from None
    return leaf


def _load_der(name: str, der: bytes) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError:
        raise CertificateChainError(f"{name} is not a valid DER certificate") from None


def _nitro_end_entity_policy() -> ExtensionPolicy:
    return (
        ExtensionPolicy.permit_all()
        .require_present(x509.BasicConstraints, Criticality.CRITICAL, _require_not_a_ca)
        .require_present(x509.KeyUsage, Criticality.AGNOSTIC, _require_digital_signature)
    )


def _require_not_a_ca(policy: Any, certificate: x509.Certificate, extension: x509.BasicConstraints) -> None:
    if extension.ca:
        raise ValueError("the signing certificate must not be a CA")


def _require_digital_signature(policy: Any, certificate: x509.Certificate, extension: x509.KeyUsage) -> None:
    if not extension.digital_signature:
        raise ValueError("the signing certificate's keyUsage lacks digitalSignature")
