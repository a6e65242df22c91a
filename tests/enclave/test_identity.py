import ipaddress
import ssl
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from attestation.testing import deterministic_rng
from enclave.tls_identity import TLS_CERTIFICATE_LIFETIME, generate_identity, spki_sha256

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def identity():
    return generate_identity(hostname="enclave.example", now=NOW, rng=deterministic_rng(b"identity"))


class TestIdentity:
    def test_tls_certificate(self, identity):
        certificate = identity.tls_certificate
        assert isinstance(identity.tls_key, ec.EllipticCurvePrivateKey) and identity.tls_key.curve.name == "secp256r1"
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert names.get_values_for_type(x509.DNSName) == ["enclave.example", "localhost"]
        assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
        assert certificate.not_valid_after_utc - certificate.not_valid_before_utc == TLS_CERTIFICATE_LIFETIME
        assert certificate.not_valid_before_utc <= NOW
        assert not certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca

    def test_keys_are_raw_32_bytes_and_distinct(self, identity):
        assert len(identity.signing_public_key) == 32 and len(identity.provisioning_public_key) == 32
        assert identity.signing_public_key != identity.provisioning_public_key

    def test_spki_sha256_accepts_objects_and_der(self, identity):
        assert spki_sha256(identity.tls_certificate) == spki_sha256(identity.tls_certificate_der)
        assert identity.tls_spki_sha256 == spki_sha256(identity.tls_certificate)

    def test_randomness_is_injected(self):
        first = generate_identity(hostname="a.test", now=NOW, rng=deterministic_rng(b"x"))
        second = generate_identity(hostname="a.test", now=NOW, rng=deterministic_rng(b"x"))
        assert first.signing_public_key == second.signing_public_key
        assert first.tls_spki_sha256 == second.tls_spki_sha256

    def test_repr_shows_no_private_material(self, identity):
        from cryptography.hazmat.primitives import serialization

        seed = identity.signing_key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        text = repr(identity)
        assert seed.hex() not in text and "PRIVATE" not in text
        assert identity.tls_spki_sha256.hex() in text

    def test_reissue_keeps_the_spki(self, identity):
        later = NOW + timedelta(days=1, hours=2)
        assert identity.needs_renewal(later)
        renewed = identity.reissue_certificate(later)
        assert renewed.serial_number != identity.tls_certificate.serial_number
        assert spki_sha256(renewed) == identity.tls_spki_sha256
        assert not identity.needs_renewal(later)

    def test_server_context_loads_without_leaving_files(self, identity, tmp_path, monkeypatch):
        import os

        before = set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()
        context = identity.server_ssl_context()
        assert isinstance(context, ssl.SSLContext)
        after = set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()
        assert after == before

    @pytest.mark.parametrize("hostname", ["", "bad host", "-" * 64 + ".test", "é.test", "a..b"])
    def test_bad_hostname(self, hostname):
        with pytest.raises(ValueError):
            generate_identity(hostname=hostname, now=NOW)
