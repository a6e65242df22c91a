import hashlib

import pytest

from attestation.trust import AWS_NITRO_ROOT_G1_SHA256, TrustRoot

from .conftest import asset


class TestTrustRoot:
    def test_from_pem_refuses_a_test_root_unless_told(self, pki):
        with pytest.raises(ValueError, match="not the AWS Nitro root"):
            TrustRoot.from_pem(pki.root_pem, allow_untrusted_test_root=False)

    def test_from_pem_refuses_garbage_and_bundles(self, pki):
        with pytest.raises(ValueError):
            TrustRoot.from_pem(b"not a pem", allow_untrusted_test_root=True)
        with pytest.raises(ValueError, match="exactly one certificate"):
            TrustRoot.from_pem(pki.root_pem * 2, allow_untrusted_test_root=True)
        with pytest.raises(ValueError, match="larger than"):
            TrustRoot.from_pem(b"x" * 20000, allow_untrusted_test_root=True)

    def test_aws_root_is_the_pinned_fingerprint(self):
        root = TrustRoot.aws()
        assert root.is_aws
        assert root.fingerprint.hex() == "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b"
        assert hashlib.sha256(root.der).digest() == AWS_NITRO_ROOT_G1_SHA256
        assert root.certificate.subject.rfc4514_string() == "CN=aws.nitro-enclaves,OU=AWS,O=Amazon,C=US"

    def test_aws_root_equals_cabundle_0_of_real_documents(self):
        from attestation.document import AttestationDocument

        document = AttestationDocument.from_cose(asset("base_2026_indefinite_repaired.bin"))
        assert document.unverified_cabundle[0] == TrustRoot.aws().der

    def test_from_pem_recognises_the_aws_root_without_the_flag(self):
        root = TrustRoot.from_pem(TrustRoot.aws().to_pem(), allow_untrusted_test_root=False)
        assert root.is_aws

    def test_from_pem_accepts_a_test_root_when_told(self, pki):
        root = TrustRoot.from_pem(pki.root_pem, allow_untrusted_test_root=True)
        assert not root.is_aws
