"""Throwaway test PKI and real COSE documents signed under it (like trustme, for Nitro).

``TestPki.create`` mints root → regional intermediate → instance intermediate,
and ``issue_leaf`` the 3-hour signing certificate, all ECDSA P-384 with
SHA-384 and the same extensions AWS uses (the leaf has no SAN, no EKU).
Time and randomness are parameters; with a seeded ``rng`` (see
``deterministic_rng``) every key, serial and signature is reproducible,
because signatures use RFC 6979 deterministic ECDSA.

The root is NOT the AWS root, so ``Verifier.aws()`` rejects these documents;
verify them with ``TrustRoot.from_pem(..., allow_untrusted_test_root=True)``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, load_pem_private_key
from cryptography.x509.oid import NameOID

from .cose import ES384_PROTECTED_HEADER, CoseSign1, sig_structure
from .trust import TrustRoot

Random = Callable[[int], bytes]

ROOT_LIFETIME = timedelta(days=30 * 365)
REGIONAL_LIFETIME = timedelta(days=20)
INSTANCE_LIFETIME = timedelta(days=1)
LEAF_LIFETIME = timedelta(hours=3)
# Order of the P-384 group, to map random bytes onto a valid private scalar.
_P384_ORDER = int(
    "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973", 16
)
_CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
    key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
)  # fmt: skip
_LEAF_KEY_USAGE = x509.KeyUsage(
    digital_signature=True, content_commitment=True, key_encipherment=False, data_encipherment=False,
    key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False,
)  # fmt: skip


def deterministic_rng(seed: bytes) -> Random:
    """A reproducible byte stream (SHAKE-256 of seed ‖ counter). For tests and fixtures only."""
    counter = 0

    def read(length: int) -> bytes:
        nonlocal counter
        counter += 1
        return hashlib.shake_256(seed + counter.to_bytes(8, "big")).digest(length)

    return read


@dataclass(frozen=True)
class IssuedCertificate:
    certificate: x509.Certificate
    private_key: ec.EllipticCurvePrivateKey

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(Encoding.DER)


@dataclass(frozen=True)
class TestPki:
    """A root and two intermediates; issues Nitro-like leaf certificates."""

    __test__ = False  # not a pytest test class, despite the name

    root: IssuedCertificate
    intermediates: tuple[IssuedCertificate, IssuedCertificate]
    region: str
    rng: Random

    @classmethod
    def create(
        cls, *, now: datetime, rng: Random = os.urandom, region: str = "test-region-1", root: IssuedCertificate | None = None
    ) -> TestPki:
        """A new PKI; with ``root`` (``load_root``), new intermediates under a root kept from an earlier run."""
        if root is None:
            root = _issue(
                subject=_name("test.nitro-enclaves"), subject_key=_private_key(rng), issuer=None, not_before=now,
                lifetime=ROOT_LIFETIME, basic_constraints=x509.BasicConstraints(ca=True, path_length=None), rng=rng,
            )  # fmt: skip
        regional = _issue(
            subject=_name(f"{rng(8).hex()}.{region}.test.nitro-enclaves"), subject_key=_private_key(rng),
            issuer=root, not_before=now, lifetime=REGIONAL_LIFETIME,
            basic_constraints=x509.BasicConstraints(ca=True, path_length=1), rng=rng,
        )  # fmt: skip
        instance = _issue(
            subject=_name(f"i-{rng(8).hex()[:17]}.{region}.test.nitro-enclaves"), subject_key=_private_key(rng),
            issuer=regional, not_before=now, lifetime=INSTANCE_LIFETIME,
            basic_constraints=x509.BasicConstraints(ca=True, path_length=0), rng=rng,
        )  # fmt: skip
        return cls(root=root, intermediates=(regional, instance), region=region, rng=rng)

    @property
    def cabundle(self) -> tuple[bytes, ...]:
        """``[root, regional, instance]`` in the order the NSM puts them in a document."""
        return (self.root.der, *(intermediate.der for intermediate in self.intermediates))

    @property
    def root_pem(self) -> bytes:
        return self.root.certificate.public_bytes(Encoding.PEM)

    def trust_root(self) -> TrustRoot:
        return TrustRoot.from_pem(self.root_pem, allow_untrusted_test_root=True)

    def root_with_key_pem(self) -> bytes:
        """The root's private key and certificate (PEM), to keep a development PKI across runs (``load_root``)."""
        key = self.root.private_key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        return key + self.root_pem

    def issue_leaf(self, *, module_id: str, not_before: datetime) -> IssuedCertificate:
        """The document-signing certificate: CA=false, digitalSignature, 3 hours."""
        return _issue(
            subject=_name(f"{module_id}.{self.region}.test"), subject_key=_private_key(self.rng),
            issuer=self.intermediates[-1], not_before=not_before, lifetime=LEAF_LIFETIME,
            basic_constraints=x509.BasicConstraints(ca=False, path_length=None), rng=self.rng, leaf=True,
        )  # fmt: skip


def load_root(pem: bytes) -> IssuedCertificate:
    """A test root saved with ``TestPki.root_with_key_pem``."""
    key = load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("the saved test root key is not an EC key")
    (certificate,) = x509.load_pem_x509_certificates(pem[pem.index(b"-----BEGIN CERTIFICATE-----") :])
    return IssuedCertificate(certificate=certificate, private_key=key)


def encode_payload(
    *,
    module_id: str,
    timestamp_ms: int,
    pcrs: Mapping[int, bytes],
    certificate: bytes,
    cabundle: Sequence[bytes],
    public_key: bytes | None,
    user_data: bytes | None,
    nonce: bytes | None,
) -> bytes:
    """The payload as 2026 NSMs write it: indefinite-length outer map, definite inner ones."""
    fields = (
        ("module_id", module_id), ("digest", "SHA384"), ("timestamp", timestamp_ms),
        ("pcrs", dict(sorted(pcrs.items()))), ("certificate", certificate), ("cabundle", list(cabundle)),
        ("public_key", public_key), ("user_data", user_data), ("nonce", nonce),
    )  # fmt: skip
    return b"\xbf" + b"".join(cbor2.dumps(key) + cbor2.dumps(value) for key, value in fields) + b"\xff"


def sign_cose(payload: bytes, private_key: ec.EllipticCurvePrivateKey) -> bytes:
    """An untagged COSE_Sign1 ES384 envelope over ``payload``."""
    der_signature = private_key.sign(
        sig_structure(ES384_PROTECTED_HEADER, payload), ec.ECDSA(hashes.SHA384(), deterministic_signing=True)
    )
    r, s = decode_dss_signature(der_signature)
    signature = r.to_bytes(48, "big") + s.to_bytes(48, "big")
    return CoseSign1(protected=ES384_PROTECTED_HEADER, payload=payload, signature=signature).to_bytes()


def milliseconds_since_epoch(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("time must be timezone-aware")
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def _private_key(rng: Random) -> ec.EllipticCurvePrivateKey:
    scalar = int.from_bytes(rng(64), "big") % (_P384_ORDER - 1) + 1
    return ec.derive_private_key(scalar, ec.SECP384R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "memwal-enclave test PKI"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "NOT AWS"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _issue(
    *,
    subject: x509.Name,
    subject_key: ec.EllipticCurvePrivateKey,
    issuer: IssuedCertificate | None,
    not_before: datetime,
    lifetime: timedelta,
    basic_constraints: x509.BasicConstraints,
    rng: Random,
    leaf: bool = False,
) -> IssuedCertificate:
    signer_key = subject_key if issuer is None else issuer.private_key
    not_before = not_before.replace(microsecond=0)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject if issuer is None else issuer.certificate.subject)
        .public_key(subject_key.public_key())
        .serial_number(int.from_bytes(rng(16), "big") >> 1 | 1)
        .not_valid_before(not_before)
        .not_valid_after(not_before + lifetime)
        .add_extension(basic_constraints, critical=True)
    )
    if leaf:
        # Like AWS: keyUsage not critical, and no SKI/AKI/SAN/EKU on the leaf.
        builder = builder.add_extension(_LEAF_KEY_USAGE, critical=False)
    else:
        builder = builder.add_extension(_CA_KEY_USAGE, critical=True).add_extension(
            x509.SubjectKeyIdentifier.from_public_key(subject_key.public_key()), critical=False
        )
        if issuer is not None:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.private_key.public_key()), critical=False
            )
    certificate = builder.sign(signer_key, hashes.SHA384(), ecdsa_deterministic=True)
    return IssuedCertificate(certificate=certificate, private_key=subject_key)
