import json

import pytest

from attestation._cli import main

from .conftest import ASSETS, asset, expectation

PROD = str(ASSETS / "anjuna_sample_prod_doc.bin")
DEBUG = str(ASSETS / "evervault_beta_debug.bin")


class TestVerifyCommand:
    def test_help(self, capsys):
        with pytest.raises(SystemExit) as exited:
            main(["verify", "--help"])
        assert exited.value.code == 0
        assert "--archived" in capsys.readouterr().out

    def test_expired_live_document_exits_1_with_one_error_line(self, capsys):
        assert main(["verify", PROD]) == 1
        error = capsys.readouterr().err.strip().splitlines()
        assert len(error) == 1 and error[0].startswith("error: CertificateChainError:")

    def test_debug_document_is_refused_unless_allowed(self, capsys):
        assert main(["verify", DEBUG, "--archived"]) == 1
        assert "error: PolicyError: document comes from a debug-mode enclave" in capsys.readouterr().err
        assert main(["verify", DEBUG, "--archived", "--allow-debug"]) == 0

    def test_pcr_mismatch_and_nonce_mismatch(self, tmp_path, capsys):
        pcrs = tmp_path / "pcrs.json"
        pcrs.write_text(json.dumps({"PCR0": "00" * 48}))
        assert main(["verify", PROD, "--archived", "--pcrs", str(pcrs)]) == 1
        assert "PCR0 mismatch" in capsys.readouterr().err
        assert main(["verify", PROD, "--archived", "--nonce", "00112233"]) == 1
        assert "FreshnessError" in capsys.readouterr().err

    def test_bad_input_file(self, tmp_path, capsys):
        bad = tmp_path / "doc.txt"
        bad.write_text("not a document!")
        assert main(["verify", str(bad), "--archived"]) == 1
        assert "neither CBOR, hex nor base64" in capsys.readouterr().err

    def test_wrong_root_needs_the_test_root(self, capsys):
        assert main(["verify", str(ASSETS / "wrong_root.bin"), "--archived"]) == 1
        assert "cabundle[0] is not the pinned root" in capsys.readouterr().err
        test_root = str(ASSETS / "wrong_root_test_root.pem")
        assert main(["verify", str(ASSETS / "wrong_root.bin"), "--archived", "--test-root", test_root]) == 0
        assert "UNTRUSTED test root" in capsys.readouterr().out

    def test_archived_with_pcrs_prints_every_step(self, tmp_path, capsys):
        expected = expectation("base_2026_indefinite_repaired")
        pcrs = tmp_path / "pcrs.json"
        pcrs.write_text(json.dumps({f"PCR{index}": expected[f"expected_pcr{index}"] for index in (0, 1, 2)}))
        hex_file = tmp_path / "doc.hex"
        hex_file.write_text(asset("base_2026_indefinite_repaired.bin").hex())
        assert main(["verify", str(hex_file), "--archived", "--pcrs", str(pcrs)]) == 0
        out = capsys.readouterr().out
        for step in ("(1) ok  decode", "(2) ok  chain", "(3) ok  signature", "(4) ok  freshness", "(5) ok  policy"):
            assert step in out
        assert expected["expected_user_data_hex"] in out

    def test_at_a_given_time(self, capsys):
        assert main(["verify", PROD, "--at", "2021-03-17T22:30:00+00:00"]) == 0
        assert main(["verify", PROD, "--at", "2021-03-18T02:00:00+00:00"]) == 1
        assert "CertificateChainError" in capsys.readouterr().err
