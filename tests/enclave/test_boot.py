import json

import pytest

from attestation.errors import NsmUnavailable
from attestation.simulator import SimulatedNsm
from enclave.boot import RuntimeOptions, build_runtime, choose_attester
from enclave.config_commitment import CONFIGURATION_PCR, expected_configuration_pcr
from enclave.errors import RuntimeConfigurationError

from .conftest import BASE_ENVIRONMENT, real_now


class TestChooseAttester:
    def test_nsm_is_the_default_and_never_falls_back(self):
        assert RuntimeOptions.from_environ({}).attester == "nsm"
        with pytest.raises(NsmUnavailable):  # no /dev/nsm on this machine
            choose_attester(RuntimeOptions.from_environ({}), clock=real_now)

    def test_simulator_only_when_asked_and_reports_the_given_pcrs(self, tmp_path):
        (tmp_path / "pcrs.json").write_text(json.dumps({"PCR0": "0a" * 48, "PCR1": "0b" * 48}))
        options = RuntimeOptions.from_environ(
            {"ENCLAVE_ATTESTER": "simulator", "ENCLAVE_SIMULATOR_PCRS": str(tmp_path / "pcrs.json"),
             "ENCLAVE_SIMULATOR_ROOT_OUT": str(tmp_path / "root.pem")}
        )  # fmt: skip
        attester = choose_attester(options, clock=real_now)
        assert isinstance(attester, SimulatedNsm)
        assert attester.describe_pcr(0)[1] == bytes.fromhex("0a" * 48)
        assert (tmp_path / "root.pem").read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")

    @pytest.mark.parametrize(
        "environment",
        [{"ENCLAVE_ATTESTER": "fake"}, {"ENCLAVE_SIMULATOR_PCRS": "pcrs.json"}, {"ENCLAVE_SIMULATOR_ROOT_OUT": "x"}],
    )
    def test_inconsistent_options_are_refused(self, environment):
        with pytest.raises(RuntimeConfigurationError):
            RuntimeOptions.from_environ(environment)


class TestBuildRuntime:
    def test_boots_with_the_simulator_and_commits_pcr16(self):
        runtime = build_runtime(dict(BASE_ENVIRONMENT, ENCLAVE_ATTESTER="simulator"), clock=real_now)
        assert runtime.attester.describe_pcr(CONFIGURATION_PCR) == (
            True, expected_configuration_pcr(runtime.configuration_digest))  # fmt: skip

    @pytest.mark.parametrize("name", ["OPENAI_API_KEY", "SERVER_SUI_PRIVATE_KEYS", "DATABASE_URL"])
    def test_refuses_secrets_from_the_host(self, name):
        with pytest.raises(RuntimeConfigurationError, match=name):
            build_runtime(dict(BASE_ENVIRONMENT, ENCLAVE_ATTESTER="simulator", **{name: "x"}), clock=real_now)
