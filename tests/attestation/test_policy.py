import hashlib
import logging

import pytest

from attestation.errors import PolicyError
from attestation.policy import (
    AllOf,
    AnyOf,
    Nonce,
    PCRs,
    PublicKey,
    RejectDebugMode,
    UnsafeAllowDebugMode,
    UnsafeNoOp,
    UserData,
    UserDataDigest,
    allows_debug_mode,
)


class TestPCRs:
    def test_rejects_empty_expectations(self):
        with pytest.raises(ValueError, match="at least one"):
            PCRs({})

    def test_rejects_bad_indices_and_lengths(self):
        with pytest.raises(ValueError, match="not in 0..31"):
            PCRs({32: bytes(48)})
        with pytest.raises(ValueError, match="32, 48 or 64"):
            PCRs({0: bytes(20)})

    def test_rejects_mismatch_and_missing(self, verified_prod):
        with pytest.raises(PolicyError, match="PCR2 mismatch"):
            PCRs({0: verified_prod.pcrs[0], 2: bytes(48)}).verify(verified_prod)
        with pytest.raises(PolicyError, match="PCR20 is missing"):
            PCRs({20: bytes(48)}).verify(verified_prod)

    def test_accepts_matching_values(self, verified_prod):
        PCRs({index: verified_prod.pcrs[index] for index in (0, 1, 2)}).verify(verified_prod)


class TestRejectDebugMode:
    def test_rejects_all_zero_pcr0_1_2(self, verified_debug):
        with pytest.raises(PolicyError, match="debug-mode"):
            RejectDebugMode().verify(verified_debug)

    def test_accepts_production_documents(self, verified_prod):
        RejectDebugMode().verify(verified_prod)


class TestExactFields:
    def test_reject_absent_fields(self, verified_prod):
        for policy, field in ((Nonce(b"x"), "nonce"), (UserData(b"x"), "user_data"), (PublicKey(b"x"), "public_key")):
            with pytest.raises(PolicyError, match=f"document has no {field}"):
                policy.verify(verified_prod)

    def test_reject_mismatch(self, verified_debug):
        with pytest.raises(PolicyError, match="user_data does not match"):
            UserData(b"hello, world?").verify(verified_debug)
        with pytest.raises(PolicyError, match="public_key does not match"):
            PublicKey(b"other").verify(verified_debug)

    def test_reject_non_bytes_expectations(self):
        with pytest.raises(TypeError, match="must be bytes"):
            Nonce("text")  # type: ignore[arg-type]

    def test_accept_matches(self, verified_debug):
        UserData(b"hello, world!").verify(verified_debug)
        PublicKey(verified_debug.public_key).verify(verified_debug)


class TestUserDataDigest:
    def test_rejects_unknown_algorithms(self):
        with pytest.raises(ValueError, match="algorithm must be one of"):
            UserDataDigest(b"x", algorithm="md5")

    def test_rejects_a_wrong_digest(self, verified_debug):
        with pytest.raises(PolicyError, match="user_data does not match"):
            UserDataDigest(b"hello, world!").verify(verified_debug)

    def test_expected_value_is_the_digest(self):
        assert UserDataDigest(b"abc", algorithm="sha384").expected == hashlib.sha384(b"abc").digest()


class TestAllOf:
    def test_empty_fails_closed(self, verified_prod):
        with pytest.raises(PolicyError, match="AllOf\\(\\[\\]\\) has no policies"):
            AllOf([]).verify(verified_prod)

    def test_one_failure_fails(self, verified_prod):
        with pytest.raises(PolicyError, match="PCR0 mismatch"):
            AllOf([RejectDebugMode(), PCRs({0: bytes(48)})]).verify(verified_prod)

    def test_all_passing_passes(self, verified_prod):
        AllOf([RejectDebugMode(), PCRs({0: verified_prod.pcrs[0]})]).verify(verified_prod)


class TestAnyOf:
    def test_empty_fails_closed(self, verified_prod):
        with pytest.raises(PolicyError, match="0 of 0 policies succeeded"):
            AnyOf([]).verify(verified_prod)

    def test_all_failing_fails(self, verified_prod):
        with pytest.raises(PolicyError, match="0 of 2 policies succeeded"):
            AnyOf([PCRs({0: bytes(48)}), Nonce(b"x")]).verify(verified_prod)

    def test_one_passing_passes(self, verified_prod):
        AnyOf([PCRs({0: bytes(48)}), PCRs({0: verified_prod.pcrs[0]})]).verify(verified_prod)


class TestUnsafePolicies:
    def test_no_op_logs_a_warning_on_every_use(self, verified_prod, caplog):
        with caplog.at_level(logging.WARNING, logger="attestation.policy"):
            UnsafeNoOp().verify(verified_prod)
            UnsafeNoOp().verify(verified_prod)
        assert [record.message for record in caplog.records].count(
            "UnsafeNoOp: the attestation document is accepted without any policy check"
        ) == 2

    def test_allow_debug_mode_logs_a_warning(self, verified_debug, caplog):
        with caplog.at_level(logging.WARNING, logger="attestation.policy"):
            UnsafeAllowDebugMode().verify(verified_debug)
        assert "debug-mode" in caplog.text


class TestAllowsDebugMode:
    def test_only_direct_or_all_of_opt_outs_count(self):
        assert not allows_debug_mode(UnsafeNoOp())
        assert not allows_debug_mode(AnyOf([UnsafeAllowDebugMode()]))
        assert allows_debug_mode(UnsafeAllowDebugMode())
        assert allows_debug_mode(AllOf([UnsafeNoOp(), AllOf([UnsafeAllowDebugMode()])]))
