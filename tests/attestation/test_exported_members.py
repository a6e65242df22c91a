import attestation


class TestExportedMembers:
    def test_all_is_pinned(self):
        assert attestation.__all__ == [
            "AllOf", "AnyOf", "AttestationDocument", "AttestationError", "Attester",
            "CertificateChainError", "DecodeError", "FreshnessError", "Nonce", "NsmAttester",
            "NsmError", "NsmUnavailable", "PCRs", "Policy", "PolicyError", "PublicKey",
            "RejectDebugMode", "SignatureError", "TrustRoot", "UnknownKeys", "UnsafeAllowDebugMode",
            "UnsafeNoOp", "UserData", "UserDataDigest", "VerifiedDocument", "Verifier", "load_expected_pcrs",
        ]  # fmt: skip

    def test_every_exported_member_exists_and_is_documented(self):
        for name in attestation.__all__:
            member = getattr(attestation, name)
            assert member.__module__.startswith("attestation."), name
            assert member.__doc__, f"{name} has no docstring"

    def test_simulator_and_test_pki_are_not_exported(self):
        assert "SimulatedNsm" not in attestation.__all__
        assert "TestPki" not in attestation.__all__
        assert not hasattr(attestation, "SimulatedNsm")

    def test_docstring_carries_a_usage_example(self):
        assert "Verifier.aws()" in attestation.__doc__
        assert "verify_live(" in attestation.__doc__
