from datetime import UTC, datetime, timedelta

import pytest

from attestation.errors import CertificateChainError, DecodeError, FreshnessError, PolicyError, SignatureError
from attestation.policy import AllOf, PCRs, PublicKey, UnsafeAllowDebugMode, UserData
from attestation.verifier import Verifier

from .conftest import IMAGE_PCRS, REAL_DOCUMENTS, asset, expectation

EXPIRED_NOW = datetime(2026, 11, 21, tzinfo=UTC)


def pcr_policy(expected: dict) -> PCRs:
    return PCRs({index: bytes.fromhex(expected[f"expected_pcr{index}"]) for index in (0, 1, 2, 8)})


class TestVerifyRealDocuments:
    def test_debug_document_is_rejected_by_default(self):
        expected = expectation("evervault_beta_debug")
        with pytest.raises(PolicyError, match="debug-mode enclave"):
            Verifier.aws().verify_archived(asset("evervault_beta_debug.bin"), policy=pcr_policy(expected))

    @pytest.mark.parametrize("name", REAL_DOCUMENTS)
    def test_live_verification_today_fails_because_the_chain_expired(self, name):
        with pytest.raises(CertificateChainError, match="not valid at validation time"):
            Verifier.aws().verify_live(
                asset(f"{name}.bin"), policy=UnsafeAllowDebugMode(), nonce=None, now=EXPIRED_NOW
            )

    def test_wrong_pcr_is_a_policy_error(self):
        with pytest.raises(PolicyError, match="PCR0 mismatch"):
            Verifier.aws().verify_archived(asset("anjuna_sample_prod_doc.bin"), policy=PCRs({0: bytes(48)}))

    def test_nonce_mismatch_is_a_freshness_error(self):
        with pytest.raises(FreshnessError, match="carries no nonce"):
            Verifier.aws().verify_archived(asset("anjuna_sample_prod_doc.bin"), policy=UnsafeAllowDebugMode(),
                                           nonce=b"n" * 16)  # fmt: skip

    def test_max_age_is_enforced(self):
        raw = asset("anjuna_sample_prod_doc.bin")
        at = datetime(2021, 3, 17, 22, 30, tzinfo=UTC)  # leaf still valid, document 28 min old
        with pytest.raises(FreshnessError, match="older than 0:05:00"):
            Verifier.aws().verify(raw, policy=UnsafeAllowDebugMode(), at=at, nonce=None, max_age=timedelta(minutes=5))
        Verifier.aws().verify(raw, policy=UnsafeAllowDebugMode(), at=at, nonce=None, max_age=timedelta(hours=1))

    def test_rejects_naive_time(self):
        with pytest.raises(ValueError, match="timezone-aware"):
            Verifier.aws().verify(asset("anjuna_sample_prod_doc.bin"), policy=UnsafeAllowDebugMode(),
                                  at=datetime(2021, 3, 17, 22, 2), nonce=None, max_age=None)  # fmt: skip

    @pytest.mark.parametrize("name", REAL_DOCUMENTS)
    def test_verifies_at_its_own_timestamp_exactly_as_the_json_says(self, name):
        expected = expectation(name)
        assert expected["should_verify_at_timestamp"]
        policies = [pcr_policy(expected)]
        if expected["expected_user_data_hex"]:
            policies.append(UserData(bytes.fromhex(expected["expected_user_data_hex"])))
        if expected["expected_public_key_hex"]:
            policies.append(PublicKey(bytes.fromhex(expected["expected_public_key_hex"])))
        if expected["debug_mode"]:
            policies.append(UnsafeAllowDebugMode())
        document = Verifier.aws().verify_archived(asset(f"{name}.bin"), policy=AllOf(policies))
        assert document.module_id == expected["module_id"]
        assert document.timestamp == datetime.fromtimestamp(expected["expected_timestamp_ms"] / 1000, UTC)
        assert document.verified_at == document.timestamp
        for field in ("nonce", "user_data", "public_key"):
            value = getattr(document, field)
            assert (None if value is None else value.hex()) == expected[f"expected_{field}_hex"]
        debug = all(not any(document.pcrs[index]) for index in (0, 1, 2))
        assert debug == expected["debug_mode"]

    def test_live_verification_within_the_window(self):
        raw = asset("base_2026_indefinite_repaired.bin")
        now = datetime(2026, 1, 3, 20, 43, tzinfo=UTC)
        document = Verifier.aws().verify_live(raw, policy=UnsafeAllowDebugMode(), nonce=None, now=now)
        assert document.verified_at == now


class TestVerifySimulatedDocuments:
    def test_aws_verifier_rejects_simulator_documents(self, simulator, clock):
        raw = simulator.attestation(user_data=None, nonce=b"n" * 16, public_key=None)
        with pytest.raises(CertificateChainError, match="pinned root"):
            Verifier.aws().verify_live(raw, policy=PCRs(IMAGE_PCRS), nonce=b"n" * 16, now=clock.now)

    def test_nonce_mismatch(self, simulator, pki, clock):
        raw = simulator.attestation(user_data=None, nonce=b"a" * 16, public_key=None)
        with pytest.raises(FreshnessError, match="nonce does not match"):
            Verifier(trust_root=pki.trust_root()).verify_live(raw, policy=PCRs(IMAGE_PCRS), nonce=b"b" * 16,
                                                              now=clock.now)  # fmt: skip

    def test_too_old(self, simulator, pki, clock):
        raw = simulator.attestation(user_data=None, nonce=None, public_key=None)
        with pytest.raises(FreshnessError, match="older than"):
            Verifier(trust_root=pki.trust_root()).verify_live(raw, policy=PCRs(IMAGE_PCRS), nonce=None,
                                                              now=clock.now + timedelta(minutes=6))  # fmt: skip

    def test_dated_in_the_future_beyond_skew(self, simulator, pki, clock):
        raw = simulator.attestation(user_data=None, nonce=None, public_key=None)
        with pytest.raises(FreshnessError, match="after"):
            Verifier(trust_root=pki.trust_root()).verify_live(raw, policy=PCRs(IMAGE_PCRS), nonce=None,
                                                              now=clock.now - timedelta(minutes=2))  # fmt: skip

    def test_tampered_signature(self, simulator, pki, clock):
        raw = bytearray(simulator.attestation(user_data=None, nonce=None, public_key=None))
        raw[-5] ^= 1
        with pytest.raises(SignatureError, match="does not verify"):
            Verifier(trust_root=pki.trust_root()).verify_live(bytes(raw), policy=PCRs(IMAGE_PCRS), nonce=None,
                                                              now=clock.now)  # fmt: skip

    def test_garbage_is_a_decode_error(self, pki, clock):
        with pytest.raises(DecodeError):
            Verifier(trust_root=pki.trust_root()).verify_live(b"\x84garbage", policy=PCRs(IMAGE_PCRS), nonce=None,
                                                              now=clock.now)  # fmt: skip

    def test_small_clock_skew_behind_the_enclave_is_tolerated(self, simulator, pki, clock):
        raw = simulator.attestation(user_data=None, nonce=None, public_key=None)
        verifier = Verifier(trust_root=pki.trust_root())
        document = verifier.verify_live(raw, policy=PCRs(IMAGE_PCRS), nonce=None, now=clock.now - timedelta(seconds=10))
        assert document.timestamp == clock.now

    def test_verifies_with_the_test_root(self, simulator, pki, clock):
        raw = simulator.attestation(user_data=b"u", nonce=b"n" * 16, public_key=b"k" * 32)
        steps = []
        document = Verifier(trust_root=pki.trust_root()).verify_live(
            raw, policy=AllOf([PCRs(IMAGE_PCRS), PublicKey(b"k" * 32)]), nonce=b"n" * 16, now=clock.now,
            observer=steps.append,
        )  # fmt: skip
        assert [step.split(":")[0] for step in steps] == ["decode", "chain", "signature", "freshness", "policy"]
        assert document.user_data == b"u" and document.nonce == b"n" * 16
