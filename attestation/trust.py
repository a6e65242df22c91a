"""The pinned root of trust: the AWS Nitro Enclaves root G1, or an explicit test root.

The AWS root ships inside the package and its DER SHA-256 fingerprint is
checked on every load (the value AWS publishes on its root-verification page),
so a modified file cannot silently become the anchor.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from importlib import resources

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

AWS_NITRO_ROOT_G1_SHA256 = bytes.fromhex("641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b")
_AWS_ROOT_RESOURCE = "aws_nitro_root_g1.pem"
MAX_PEM_SIZE = 16 * 1024


@dataclass(frozen=True)
class TrustRoot:
    """One self-signed root certificate the verifier anchors chains in."""

    certificate: x509.Certificate
    der: bytes
    is_aws: bool

    @property
    def fingerprint(self) -> bytes:
        """SHA-256 of the root's DER encoding."""
        return hashlib.sha256(self.der).digest()

    @classmethod
    def aws(cls) -> TrustRoot:
        """The packaged AWS Nitro Enclaves root G1, fingerprint-checked."""
        pem = resources.files(__package__).joinpath("_roots").joinpath(_AWS_ROOT_RESOURCE).read_bytes()
        root = _load_pem(pem)
        if not _is_aws_root(root.public_bytes(Encoding.DER)):
            raise RuntimeError("packaged AWS Nitro root does not match its pinned SHA-256 fingerprint")
        return cls(certificate=root, der=root.public_bytes(Encoding.DER), is_aws=True)

    @classmethod
    def from_pem(cls, pem: bytes, *, allow_untrusted_test_root: bool) -> TrustRoot:
        """Load a root from PEM.

        Anything but the AWS root is refused unless ``allow_untrusted_test_root``
        is true: only tests and the simulator should ever pass it.
        """
        root = _load_pem(pem)
        der = root.public_bytes(Encoding.DER)
        if _is_aws_root(der):
            return cls(certificate=root, der=der, is_aws=True)
        if not allow_untrusted_test_root:
            raise ValueError("this root is not the AWS Nitro root; pass allow_untrusted_test_root=True for test roots")
        return cls(certificate=root, der=der, is_aws=False)

    def to_pem(self) -> bytes:
        return self.certificate.public_bytes(Encoding.PEM)


def _is_aws_root(der: bytes) -> bool:
    return hmac.compare_digest(hashlib.sha256(der).digest(), AWS_NITRO_ROOT_G1_SHA256)


def _load_pem(pem: bytes) -> x509.Certificate:
    if not isinstance(pem, bytes):
        raise TypeError("root certificate PEM must be bytes")
    if len(pem) > MAX_PEM_SIZE:
        raise ValueError(f"root certificate PEM is larger than {MAX_PEM_SIZE} bytes")
    certificates = x509.load_pem_x509_certificates(pem)
    if len(certificates) != 1:
        raise ValueError("root certificate PEM must hold exactly one certificate")
    return certificates[0]
