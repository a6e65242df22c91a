"""The enclave's boot-time identity: a TLS key and certificate, an Ed25519 identity key, an X25519
provisioning key. All three are generated in memory at boot and never leave the enclave.

* TLS: ECDSA P-256 key, self-signed certificate (SAN: the configured hostname, ``localhost``,
  ``127.0.0.1``), short validity. Clients do not trust it through a CA: they pin the SHA-256 of its
  SubjectPublicKeyInfo, which the attestation document's user_data carries (see user_data.py).
  Re-issuing the certificate over the same key keeps the binding valid (``reissue_certificate``).
* Ed25519: signs every response (response_signing.py); its raw 32-byte public key is the document's
  ``public_key`` field.
* X25519: operators seal secrets to it (attestation/provisioning.py); bound in user_data.

Randomness is injected (``rng``; the runtime can pass the NSM's ``get_random``), as is time.
Nothing here prints key material: ``repr`` shows only public fingerprints.
"""

from __future__ import annotations

import ipaddress
import os
import ssl
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.x509.oid import NameOID

from attestation.user_data import spki_sha256

Random = Callable[[int], bytes]

TLS_CERTIFICATE_LIFETIME = timedelta(days=2)
# The runtime re-issues the certificate (same key) when less than this is left.
TLS_RENEWAL_MARGIN = timedelta(days=1)
# Tolerate verifiers whose clock is slightly behind ours.
TLS_BACKDATE = timedelta(minutes=5)
MAX_HOSTNAME_LENGTH = 253
_P256_ORDER = int("ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551", 16)




@dataclass(frozen=True, repr=False)
class EnclaveIdentity:
    """The boot-time keys. Private keys are reachable only through the attributes, never via repr."""

    hostname: str
    tls_key: ec.EllipticCurvePrivateKey
    tls_certificate: x509.Certificate
    signing_key: Ed25519PrivateKey
    provisioning_key: X25519PrivateKey
    _renewals: list[x509.Certificate] = field(default_factory=list, compare=False)

    @property
    def tls_certificate_der(self) -> bytes:
        return self.current_certificate.public_bytes(serialization.Encoding.DER)

    @property
    def current_certificate(self) -> x509.Certificate:
        """The most recently issued certificate (all share ``tls_key``, hence the same SPKI)."""
        return self._renewals[-1] if self._renewals else self.tls_certificate

    @property
    def tls_spki_sha256(self) -> bytes:
        return spki_sha256(self.tls_certificate)

    @property
    def signing_public_key(self) -> bytes:
        """Raw 32-byte Ed25519 public key (the attestation document's public_key)."""
        return self.signing_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    @property
    def provisioning_public_key(self) -> bytes:
        """Raw 32-byte X25519 public key (bound in user_data)."""
        return self.provisioning_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    def needs_renewal(self, now: datetime) -> bool:
        return self.current_certificate.not_valid_after_utc - now < TLS_RENEWAL_MARGIN

    def reissue_certificate(self, now: datetime, rng: Random = os.urandom) -> x509.Certificate:
        """Issue a fresh self-signed certificate over the same TLS key (the SPKI binding is unchanged)."""
        certificate = _self_signed(self.tls_key, self.hostname, now, rng)
        self._renewals[:] = [certificate]
        return certificate

    def load_into(self, context: ssl.SSLContext) -> None:
        """Load the current certificate and key into a server context.

        ``ssl`` reads keys only from files, so they go to a fresh 0700 directory in a tmpfs
        (``/dev/shm`` when present; inside the enclave every file system is RAM) and are removed at once.
        A later call replaces the certificate for new connections.
        """
        directory = tempfile.mkdtemp(prefix="tls-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
        certificate_path = Path(directory) / "certificate.pem"
        key_path = Path(directory) / "key.pem"
        try:
            _write_private(certificate_path, self.current_certificate.public_bytes(serialization.Encoding.PEM))
            _write_private(
                key_path,
                self.tls_key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                ),
            )
            context.load_cert_chain(certfile=str(certificate_path), keyfile=str(key_path))
        finally:
            for path in (certificate_path, key_path):
                path.unlink(missing_ok=True)
            os.rmdir(directory)

    def server_ssl_context(self) -> ssl.SSLContext:
        """A TLS 1.2+ server context (HTTP/1.1 ALPN) holding this identity's certificate."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.options |= ssl.OP_NO_COMPRESSION
        context.set_alpn_protocols(["http/1.1"])
        self.load_into(context)
        return context

    def __repr__(self) -> str:
        return (
            f"EnclaveIdentity(hostname={self.hostname!r}, tls_spki_sha256={self.tls_spki_sha256.hex()}, "
            f"signing_public_key={self.signing_public_key.hex()})"
        )


def generate_identity(*, hostname: str, now: datetime, rng: Random = os.urandom) -> EnclaveIdentity:
    """Generate all boot keys from ``rng`` and a self-signed TLS certificate valid from ``now``."""
    _check_hostname(hostname)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    scalar = int.from_bytes(rng(48), "big") % (_P256_ORDER - 1) + 1
    tls_key = ec.derive_private_key(scalar, ec.SECP256R1())
    return EnclaveIdentity(
        hostname=hostname,
        tls_key=tls_key,
        tls_certificate=_self_signed(tls_key, hostname, now, rng),
        signing_key=Ed25519PrivateKey.from_private_bytes(rng(32)),
        provisioning_key=X25519PrivateKey.from_private_bytes(rng(32)),
    )


def _self_signed(key: ec.EllipticCurvePrivateKey, hostname: str, now: datetime, rng: Random) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    alternative_names: list[x509.GeneralName] = [x509.DNSName(hostname)]
    if hostname != "localhost":
        alternative_names.append(x509.DNSName("localhost"))
    alternative_names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    not_before = (now - TLS_BACKDATE).replace(microsecond=0)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(int.from_bytes(rng(16), "big") >> 1 | 1)
        .not_valid_before(not_before)
        .not_valid_after(not_before + TLS_CERTIFICATE_LIFETIME)
        .add_extension(x509.SubjectAlternativeName(alternative_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )


def _check_hostname(hostname: str) -> None:
    if not isinstance(hostname, str) or not 0 < len(hostname) <= MAX_HOSTNAME_LENGTH:
        raise ValueError("hostname must be 1..253 characters")
    labels = hostname.split(".")
    if not all(label and len(label) <= 63 and label.replace("-", "").isalnum() and label.isascii() for label in labels):
        raise ValueError(f"{hostname!r} is not a valid DNS hostname")


def _write_private(path: Path, data: bytes) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)
