import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from attestation.errors import NsmError
from attestation.simulator import SimulatedNsm
from attestation.testing import TestPki, deterministic_rng
from enclave.config_commitment import CONFIGURATION_PCR, commit_configuration, expected_configuration_pcr
from enclave.errors import ConfigurationCommitmentError

from .conftest import IMAGE_PCRS, document_for

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def configuration():
    return document_for()


@pytest.fixture
def nsm():
    pki = TestPki.create(now=NOW - timedelta(hours=1), rng=deterministic_rng(b"commitment"))
    return SimulatedNsm(pki=pki, clock=lambda: NOW, boot_pcrs=IMAGE_PCRS)


class TestCommitConfiguration:
    def test_extends_and_locks_pcr16(self, nsm):
        digest = configuration().digest()
        value = commit_configuration(nsm, digest)
        assert value == hashlib.sha384(bytes(48) + digest).digest() == expected_configuration_pcr(digest)
        assert nsm.describe_pcr(CONFIGURATION_PCR) == (True, value)
        with pytest.raises(NsmError, match="ReadOnlyIndex"):
            nsm.extend_pcr(CONFIGURATION_PCR, b"later")

    def test_document_reports_the_commitment(self, nsm):
        from attestation.document import AttestationDocument

        digest = configuration().digest()
        commit_configuration(nsm, digest)
        document = AttestationDocument.from_cose(nsm.attestation(user_data=None, nonce=None, public_key=None))
        assert document.unverified_pcrs[16] == expected_configuration_pcr(digest)

    def test_refuses_a_second_commitment(self, nsm):
        commit_configuration(nsm, configuration().digest())
        with pytest.raises(ConfigurationCommitmentError, match="boot state"):
            commit_configuration(nsm, configuration().digest())

    def test_refuses_an_already_extended_pcr16(self, nsm):
        nsm.extend_pcr(CONFIGURATION_PCR, b"someone else")
        with pytest.raises(ConfigurationCommitmentError, match="boot state"):
            commit_configuration(nsm, configuration().digest())

    def test_digest_must_be_sha384(self, nsm):
        with pytest.raises(ValueError, match="48-byte"):
            commit_configuration(nsm, b"\x00" * 32)
