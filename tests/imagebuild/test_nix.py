import shutil
import subprocess
from pathlib import Path

import pytest

NIX_DIRECTORY = Path(__file__).resolve().parents[2] / "nix"
NIX_FILES = sorted(NIX_DIRECTORY.glob("*.nix"))
NIX_INSTANTIATE = shutil.which("nix-instantiate")
requires_nix = pytest.mark.skipif(NIX_INSTANTIATE is None, reason="nix-instantiate is not installed (apt-get install nix-bin)")


class TestNixFiles:
    def test_flake_and_image_exist(self):
        assert {path.name for path in NIX_FILES} >= {"flake.nix", "enclave-image.nix", "inputs.nix"}

    @requires_nix
    @pytest.mark.parametrize("path", NIX_FILES, ids=lambda path: path.name)
    def test_parses(self, path):
        result = subprocess.run([NIX_INSTANTIATE, "--parse", str(path)], capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr

    @requires_nix
    def test_a_syntax_error_is_caught(self, tmp_path):
        broken = tmp_path / "broken.nix"
        broken.write_text("{ a = 1; b = ; }")
        result = subprocess.run([NIX_INSTANTIATE, "--parse", str(broken)], capture_output=True, text=True, check=False)
        assert result.returncode != 0 and "syntax error" in result.stderr

    @requires_nix
    def test_lock_is_readable_from_nix(self):
        expression = "(builtins.fromJSON (builtins.readFile ../imagebuild/inputs.lock.json)).kernel.deb.sha256"
        result = subprocess.run(
            [NIX_INSTANTIATE, "--eval", "-E", expression], cwd=NIX_DIRECTORY, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stderr
        assert len(result.stdout.strip().strip('"')) == 64
