"""Import boundaries (docs/architecture.md): only ``sidecar/`` may import ``sidecar._keys``; of the sidecar the
relayer imports only its wire contract (``sidecar.protocol``, which imports nothing of ours), never Seal key-server
secrets. Imports are read with ``ast``, so lazy imports inside functions count.
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

    def test_relayer_imports_only_the_sidecar_protocol(self):
        offenders = [
            f"{path.relative_to(ROOT)}: {module}"
            for path in modules_in("relayer")
            for module, name in imports_of(path)
            if is_or_under(module, "sidecar")
            and not is_or_under(module, "sidecar.protocol")
            and not (module == "sidecar" and name == "protocol")
        ]
        assert offenders == []

    def test_the_sidecar_protocol_imports_nothing_of_ours(self):
        ours = set(PRODUCTION_PACKAGES) | {"tests", "bench"}
        imported = {module.split(".")[0] for module, _ in imports_of(ROOT / "sidecar" / "protocol.py")}
        assert imported & ours == set()

    def test_relayer_never_imports_key_server_secrets(self):
        offenders = [
            f"{path.relative_to(ROOT)}: {module} {name or ''}"
            for path in modules_in("relayer")
            for module, name in imports_of(path)
            if any(is_or_under(module, secret) for secret in SECRET_MODULES) or (is_or_under(module, "sealcrypto") and name in SECRET_NAMES)
        ]
        assert offenders == []

    def test_relayer_reads_only_seal_object_headers(self):
        # The relayer parses a Seal object's header (relayer/seal_objects.py) and nothing else of sealcrypto.
        allowed = ("sealcrypto.encrypted_object", "sealcrypto.errors")
        offenders = [
            f"{path.relative_to(ROOT)}: {module}"
            for path in modules_in("relayer")
            for module, _ in imports_of(path)
            if is_or_under(module, "sealcrypto") and not any(is_or_under(module, name) for name in allowed)
        ]
        assert offenders == []

    def test_keys_module_is_private(self):
        text = (ROOT / "sidecar" / "_keys.py").read_text(encoding="utf-8")
        assert "__slots__" in text and "def __repr__" in text  # seeds never show in a repr
