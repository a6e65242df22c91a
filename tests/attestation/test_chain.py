from datetime import UTC, datetime, timedelta

import pytest

from attestation.chain import verify_chain
from attestation.document import AttestationDocument
from attestation.errors import CertificateChainError
from attestation.trust import TrustRoot

from .conftest import asset


@pytest.fixture
def document():
    return AttestationDocument.from_cose(asset("anjuna_sample_prod_doc.bin"))


def check(document, at, *, cabundle=None, leaf=None, root=None):
    return verify_chain(
        leaf_der=leaf if leaf is not None else document.unverified_certificate,
        cabundle=cabundle if cabundle is not None else document.unverified_cabundle,
        trust_root=root or TrustRoot.aws(),
        at=at,
    )


class TestVerifyChain:
    def test_rejects_naive_time(self, document):
        with pytest.raises(ValueError, match="timezone-aware"):
            check(document, datetime(2021, 3, 17, 22, 2))

    def test_rejects_after_the_leaf_expired(self, document):
        at = document.unverified_timestamp + timedelta(hours=4)
        with pytest.raises(CertificateChainError, match="not valid at validation time"):
            check(document, at)

    def test_rejects_before_the_leaf_was_issued(self, document):
        with pytest.raises(CertificateChainError, match="not valid at validation time"):
            check(document, document.unverified_timestamp - timedelta(hours=1))

    def test_rejects_a_cabundle_not_starting_with_the_pinned_root(self, document, pki):
        cabundle = (pki.root.der, *document.unverified_cabundle[1:])
        with pytest.raises(CertificateChainError, match="cabundle\\[0\\] is not the pinned root"):
            check(document, document.unverified_timestamp, cabundle=cabundle)

    def test_never_anchors_in_cabundle_0(self, document, pki):
        # A test-root chain whose cabundle[0] is the AWS root must still fail: the anchor is the pinned root only.
        leaf = pki.issue_leaf(module_id="m", not_before=document.unverified_timestamp - timedelta(minutes=1))
        cabundle = (TrustRoot.aws().der, *pki.cabundle[1:])
        with pytest.raises(CertificateChainError, match="does not verify"):
            check(document, document.unverified_timestamp, cabundle=cabundle, leaf=leaf.der)

    def test_rejects_a_missing_intermediate(self, document):
        cabundle = document.unverified_cabundle[:2] + document.unverified_cabundle[3:]
        with pytest.raises(CertificateChainError, match="does not verify"):
            check(document, document.unverified_timestamp, cabundle=cabundle)

    def test_rejects_a_ca_certificate_as_the_leaf(self, document):
        with pytest.raises(CertificateChainError, match="does not verify"):
            check(document, document.unverified_timestamp, leaf=document.unverified_cabundle[-1],
                  cabundle=document.unverified_cabundle[:-1])  # fmt: skip

    def test_rejects_undecodable_certificates(self, document):
        with pytest.raises(CertificateChainError, match="leaf certificate is not a valid DER"):
            check(document, document.unverified_timestamp, leaf=b"\x30\x03\x02\x01\x00")

    def test_accepts_the_real_chain_at_the_document_time(self, document):
        leaf = check(document, document.unverified_timestamp)
        assert leaf.subject.rfc4514_string().startswith("CN=i-078824548edcf6519-enc01784234ec227b58")

    def test_accepts_a_test_chain_with_its_test_root(self, pki):
        now = datetime(2026, 5, 1, 12, tzinfo=UTC)
        leaf = pki.issue_leaf(module_id="m", not_before=now - timedelta(minutes=1))
        verify_chain(leaf_der=leaf.der, cabundle=pki.cabundle, trust_root=pki.trust_root(), at=now)
