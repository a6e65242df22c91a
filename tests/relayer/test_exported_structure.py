"""Import boundaries (docs/architecture.md): only ``sidecar/`` may import ``sidecar._keys``; the relayer never
imports the sidecar or Seal key-server secrets. Imports are read with ``ast``, so lazy imports inside functions count.
"""

from __future__ import annotations

import pytest

from tests.import_graph import ROOT, imports_of, is_or_under, modules_in, top_level_packages

PRODUCTION_PACKAGES = [package for package in top_level_packages() if package != "tests"]
SECRET_MODULES = ("sealcrypto.key_server_secret", "sealcrypto.elgamal")
SECRET_NAMES = {"KeyServerSecret", "elgamal_decrypt", "ElGamalKeyPair"}


class TestExportedStructure:
    def test_packages_were_found(self):
        assert {"enclave", "relayer", "sidecar", "chain", "sealcrypto", "localnet"} <= set(PRODUCTION_PACKAGES)

    @pytest.mark.parametrize("package", [p for p in PRODUCTION_PACKAGES if p != "sidecar"])
    def test_only_the_sidecar_imports_its_keys(self, package):
        offenders = [
            f"{path.relative_to(ROOT)}: {module}"
            for path in modules_in(package)
            for module, name in imports_of(path)
            if is_or_under(module, "sidecar._keys") or (module == "sidecar" and name == "_keys")
        ]
        assert offenders == []

    def test_relayer_never_imports_the_sidecar(self):
        offenders = [
            f"{path.relative_to(ROOT)}: {module}"
            for path in modules_in("relayer")
            for module, _ in imports_of(path)
            if is_or_under(module, "sidecar")
        ]
        assert offenders == []

    def test_relayer_never_imports_key_server_secrets(self):
        offenders = [
            f"{path.relative_to(ROOT)}: {module} {name or ''}"
            for path in modules_in("relayer")
            for module, name in imports_of(path)
            if any(is_or_under(module, secret) for secret in SECRET_MODULES) or (is_or_under(module, "sealcrypto") and name in SECRET_NAMES)
        ]
        assert offenders == []

    def test_keys_module_is_private(self):
        text = (ROOT / "sidecar" / "_keys.py").read_text(encoding="utf-8")
        assert "__slots__" in text and "def __repr__" in text  # seeds never show in a repr
