import hashlib
from datetime import timedelta

import pytest

from attestation.document import AttestationDocument
from attestation.errors import NsmError
from attestation.policy import PCRs
from attestation.simulator import SimulatedNsm
from attestation.verifier import Verifier

from .conftest import IMAGE_PCRS


class TestSimulatedNsm:
    def test_rejects_boot_pcrs_outside_0_to_15_and_bad_lengths(self, pki, clock):
        with pytest.raises(ValueError, match="app-extendable"):
            SimulatedNsm(pki=pki, clock=clock, boot_pcrs={16: bytes(48)})
        with pytest.raises(ValueError, match="48 bytes"):
            SimulatedNsm(pki=pki, clock=clock, boot_pcrs={0: bytes(32)})

    def test_boot_pcrs_are_locked(self, simulator):
        with pytest.raises(NsmError, match="ReadOnlyIndex"):
            simulator.extend_pcr(0, b"x")
        assert simulator.describe_pcr(0) == (True, IMAGE_PCRS[0])

    def test_extending_a_locked_pcr_fails(self, simulator):
        simulator.extend_pcr(17, b"config")
        simulator.lock_pcr(17)
        with pytest.raises(NsmError, match="ReadOnlyIndex"):
            simulator.extend_pcr(17, b"more")

    def test_lock_pcrs_locks_the_range(self, simulator):
        simulator.lock_pcrs(18)
        with pytest.raises(NsmError, match="ReadOnlyIndex"):
            simulator.extend_pcr(17, b"x")
        simulator.extend_pcr(18, b"x")

    def test_rejects_oversized_attestation_fields(self, simulator):
        with pytest.raises(ValueError, match="user_data must be bytes of at most 512"):
            simulator.attestation(user_data=bytes(513), nonce=None, public_key=None)

    def test_extend_is_sha384_of_old_and_data(self, simulator):
        first = simulator.extend_pcr(16, b"a")
        second = simulator.extend_pcr(16, b"b")
        assert first == hashlib.sha384(bytes(48) + b"a").digest()
        assert second == hashlib.sha384(first + b"b").digest()
        assert simulator.describe_pcr(16) == (False, second)

    def test_document_reports_boot_and_extended_pcrs_in_an_indefinite_map(self, simulator, clock):
        value = simulator.extend_pcr(16, b"app")
        raw = simulator.attestation(user_data=None, nonce=b"n" * 20, public_key=None)
        document = AttestationDocument.from_cose(raw)
        assert document.envelope.payload[:1] == b"\xbf" and document.envelope.payload[-1:] == b"\xff"
        assert sorted(document.unverified_pcrs) == list(range(17))
        assert document.unverified_pcrs[16] == value
        assert document.unverified_pcrs[0] == IMAGE_PCRS[0]
        assert document.unverified_timestamp == clock.now

    def test_documents_verify_with_the_test_root_across_leaf_renewal(self, simulator, pki, clock):
        verifier = Verifier(trust_root=pki.trust_root())
        first = simulator.attestation(user_data=None, nonce=None, public_key=None)
        clock.advance(timedelta(hours=2, minutes=30))
        second = simulator.attestation(user_data=None, nonce=None, public_key=None)
        for raw, at in ((first, clock.now - timedelta(hours=2, minutes=30)), (second, clock.now)):
            verifier.verify_live(raw, policy=PCRs(IMAGE_PCRS), nonce=None, now=at)
        first_leaf = AttestationDocument.from_cose(first).unverified_certificate
        assert AttestationDocument.from_cose(second).unverified_certificate != first_leaf

    def test_get_random_uses_the_injected_rng(self, pki, clock):
        def rng(length):
            return b"\x07" * length

        nsm = SimulatedNsm(pki=pki, clock=clock, boot_pcrs=IMAGE_PCRS, rng=rng)
        assert nsm.get_random(5) == b"\x07" * 5
