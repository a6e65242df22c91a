import datetime
import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from imagebuild import cpio, rootfs
from imagebuild.contents import derive_contents
from imagebuild.eif import build_image, parse, serialize
from imagebuild.pcr import measure

ZEROS = bytes(48)


def independent_pcr(*parts: bytes) -> str:
    return hashlib.sha384(ZEROS + hashlib.sha384(b"".join(parts)).digest()).hexdigest()


class TestMeasure:
    def test_matches_definition_on_tiny_eif(self):
        image = parse(serialize(build_image(kernel=b"K" * 100, cmdline="ro", ramdisks=[b"boot", b"app1", b"app2"], metadata=b"{}")))
        result = measure(image).as_json_dict()
        assert result["PCR0"] == independent_pcr(b"K" * 100, b"ro", b"boot", b"app1", b"app2")
        assert result["PCR1"] == independent_pcr(b"K" * 100, b"ro", b"boot")
        assert result["PCR2"] == independent_pcr(b"app1", b"app2")
        assert result["HashAlgorithm"] == "Sha384 { ... }"
        assert "PCR8" not in result

    def test_single_ramdisk_gives_published_empty_pcr2(self):
        # Single-ramdisk eif_build images all publish this PCR2: SHA384(0^48 || SHA384("")).
        image = build_image(kernel=b"K", cmdline="", ramdisks=[b"only"], metadata=b"{}")
        pcr2 = measure(image).pcr2.hex()
        assert pcr2.startswith("21b9efbc") and pcr2.endswith("500a")

    def test_metadata_is_not_measured(self):
        first = build_image(kernel=b"K", cmdline="c", ramdisks=[b"a", b"b"], metadata=b'{"BuildTime":"1"}')
        second = build_image(kernel=b"K", cmdline="c", ramdisks=[b"a", b"b"], metadata=b'{"BuildTime":"2"}')
        assert measure(first) == measure(second)
        assert serialize(first) != serialize(second)

    def test_cmdline_is_measured(self):
        first = build_image(kernel=b"K", cmdline="a", ramdisks=[b"r"], metadata=b"{}")
        second = build_image(kernel=b"K", cmdline="b", ramdisks=[b"r"], metadata=b"{}")
        assert measure(first).pcr1 != measure(second).pcr1

    def test_pcr8_is_extend_of_certificate_der(self):
        key = ec.generate_private_key(ec.SECP384R1())
        name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "signer")])
        moment = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
        certificate = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(moment).not_valid_after(moment + datetime.timedelta(days=1))
            .sign(key, hashes.SHA384())
        )
        image = build_image(kernel=b"K", cmdline="", ramdisks=[b"r"], metadata=b"{}")
        result = measure(image, signing_certificate_pem=certificate.public_bytes(Encoding.PEM))
        assert result.pcr8 is not None
        assert result.pcr8.hex() == independent_pcr(certificate.public_bytes(Encoding.DER))


def image_from_checkout(checkout) -> bytes:
    bzimage = b"\0" * 0x202 + b"HdrS"
    bootstrap = rootfs.bootstrap_entries()
    application = rootfs.application_sources(checkout, derive_contents(checkout, entries=("app.logic",)).files)
    ramdisks = [cpio.write_cpio(bootstrap, mtime=1), cpio.write_cpio(application, mtime=1)]
    return serialize(build_image(kernel=bzimage, cmdline="console=ttyS0", ramdisks=ramdisks, metadata=b"{}"))


class TestApplicationChange:
    @pytest.fixture
    def checkout(self, tmp_path):
        (tmp_path / "app").mkdir()
        (tmp_path / "app" / "__init__.py").write_text("")
        (tmp_path / "app" / "logic.py").write_text("LIMIT = 10\n")
        (tmp_path / "app" / "__pycache__").mkdir()
        (tmp_path / "app" / "__pycache__" / "logic.cpython-311.pyc").write_bytes(b"ignored")
        return tmp_path

    def test_one_byte_changes_pcr0_and_pcr2_but_not_pcr1(self, checkout):
        before = measure(parse(image_from_checkout(checkout)))
        (checkout / "app" / "logic.py").write_text("LIMIT = 11\n")
        after = measure(parse(image_from_checkout(checkout)))
        assert after.pcr1 == before.pcr1
        assert after.pcr2 != before.pcr2
        assert after.pcr0 != before.pcr0

    def test_byte_code_does_not_change_anything(self, checkout):
        before = image_from_checkout(checkout)
        (checkout / "app" / "__pycache__" / "logic.cpython-311.pyc").write_bytes(b"different")
        assert image_from_checkout(checkout) == before
