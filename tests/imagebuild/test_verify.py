import json

import pytest

from imagebuild.errors import VerificationError
from imagebuild.verify import compare, format_table, load_published

PCR = "ab" * 48


class TestPublished:
    def test_nitro_cli_wrapper_accepted(self, tmp_path):
        path = tmp_path / "pcrs.json"
        path.write_text(json.dumps({"Measurements": {"HashAlgorithm": "Sha384 { ... }", "PCR0": PCR, "PCR1": PCR, "PCR2": PCR}}))
        assert load_published(path) == {"PCR0": PCR, "PCR1": PCR, "PCR2": PCR}

    def test_without_pcr0_rejected(self, tmp_path):
        path = tmp_path / "pcrs.json"
        path.write_text("{}")
        with pytest.raises(VerificationError, match="has no PCR0"):
            load_published(path)

    def test_not_json_rejected(self, tmp_path):
        path = tmp_path / "pcrs.json"
        path.write_text("PCR0: x")
        with pytest.raises(VerificationError, match="is not JSON"):
            load_published(path)


class TestCompare:
    def test_mismatch_is_reported(self):
        rows = compare({"PCR0": PCR, "PCR2": PCR}, {"PCR0": PCR.upper(), "PCR2": "cd" * 48})
        assert [(row.register, row.matches) for row in rows] == [("PCR0", True), ("PCR2", False)]
        assert "MISMATCH" in format_table(rows)

    def test_missing_register_is_a_mismatch(self):
        rows = compare({"PCR8": PCR}, {"PCR0": PCR})
        assert not rows[0].matches and rows[0].rebuilt == "(absent)"
