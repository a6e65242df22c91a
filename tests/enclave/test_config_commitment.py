import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest

from attestation.errors import NsmError
from attestation.simulator import SimulatedNsm
from attestation.testing import TestPki, deterministic_rng
from enclave.config_commitment import (
    CONFIGURATION_PCR,
    RuntimeConfiguration,
    commit_configuration,
    expected_configuration_pcr,
)
from enclave.errors import ConfigurationCommitmentError
from relayer.settings import Settings

from .conftest import BASE_ENVIRONMENT, IMAGE_PCRS

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def configuration(environment=None, allowlist=("b.test:443", "a.test:443")) -> RuntimeConfiguration:
    settings = Settings.from_environ(environment or BASE_ENVIRONMENT)
    return RuntimeConfiguration.from_settings(settings, egress_allowlist=allowlist, tls_hostname="enclave.test")


@pytest.fixture
def nsm():
    pki = TestPki.create(now=NOW - timedelta(hours=1), rng=deterministic_rng(b"commitment"))
    return SimulatedNsm(pki=pki, clock=lambda: NOW, boot_pcrs=IMAGE_PCRS)


class TestCanonicalJson:
    def test_is_sorted_compact_and_deterministic(self):
        text = configuration().canonical_json()
        assert text == configuration().canonical_json()
        assert b" " not in text and b"\n" not in text
        parsed = json.loads(text)
        assert list(parsed) == sorted(parsed)
        assert parsed["egress_allowlist"] == ["a.test:443", "b.test:443"]
        assert parsed["version"] == 1

    def test_allowlist_order_does_not_matter(self):
        assert configuration(allowlist=("a.test:443", "b.test:443")).digest() == configuration().digest()

    def test_digest_is_sha384_of_the_json(self):
        value = configuration()
        assert value.digest() == hashlib.sha384(value.canonical_json()).digest()

    def test_changes_with_any_setting(self):
        changed = dict(BASE_ENVIRONMENT, RATE_LIMIT_REQUESTS_PER_MINUTE="61")
        assert configuration(changed).digest() != configuration().digest()
        assert configuration(allowlist=("evil.test:443",)).digest() != configuration().digest()

    def test_secrets_never_enter_it(self):
        secret_environment = dict(BASE_ENVIRONMENT, OPENAI_API_KEY="sk-very-secret", DATABASE_URL="postgres://u:pw@h/db")
        text = configuration(secret_environment).canonical_json()
        assert b"sk-very-secret" not in text and b"pw@" not in text
        assert configuration(secret_environment).digest() == configuration().digest()


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
