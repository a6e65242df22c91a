import json

import pytest

from attestation.measurements import load_expected_pcrs

PCR0 = "2d151586641b790f3b1b92b8f89678c3aa86e73dd97969c892124be9d2b7fdc62b58a55cd9ee8216f6f5689cebf590ad"


class TestLoadExpectedPcrs:
    def test_rejects_unknown_keys(self):
        with pytest.raises(ValueError, match="unexpected key 'PCRO'"):
            load_expected_pcrs(json.dumps({"PCRO": PCR0}))

    def test_rejects_bad_hex_and_lengths(self):
        with pytest.raises(ValueError, match="PCR0 is not valid hex"):
            load_expected_pcrs(json.dumps({"PCR0": "zz"}))
        with pytest.raises(ValueError, match="32, 48 or 64"):
            load_expected_pcrs(json.dumps({"PCR0": "00"}))

    def test_rejects_empty_and_non_objects(self):
        with pytest.raises(ValueError, match="at least one"):
            load_expected_pcrs("{}")
        with pytest.raises(ValueError, match="JSON object"):
            load_expected_pcrs("[]")
        with pytest.raises(ValueError, match="not JSON"):
            load_expected_pcrs("{")

    def test_rejects_oversized_files(self):
        with pytest.raises(ValueError, match="larger than"):
            load_expected_pcrs(" " * 70000)

    def test_loads_the_flat_form(self):
        policy = load_expected_pcrs(json.dumps({"PCR0": PCR0, "PCR8": "00" * 48}))
        assert policy.expected == {0: bytes.fromhex(PCR0), 8: bytes(48)}

    def test_loads_our_image_builds_pcrs_json(self):
        text = json.dumps({"HashAlgorithm": "Sha384 { ... }", "PCR0": PCR0, "PCR1": PCR0, "PCR2": PCR0})
        assert sorted(load_expected_pcrs(text).expected) == [0, 1, 2]

    def test_rejects_another_hash_algorithm(self):
        with pytest.raises(ValueError, match="unsupported HashAlgorithm"):
            load_expected_pcrs(json.dumps({"HashAlgorithm": "Sha256", "PCR0": PCR0}))

    def test_loads_nitro_cli_build_output(self):
        text = json.dumps({"Measurements": {"HashAlgorithm": "Sha384 { ... }", "PCR0": PCR0, "PCR1": PCR0}})
        assert sorted(load_expected_pcrs(text).expected) == [0, 1]
