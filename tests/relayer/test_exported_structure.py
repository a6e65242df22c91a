"""Import boundaries (docs/architecture.md): only ``sidecar/`` may import ``sidecar._keys``; the relayer never
imports the sidecar or Seal key-server secrets. Imports are read with ``ast``, so lazy imports inside functions count.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_PACKAGES = sorted(
    path.parent.name for path in ROOT.glob("*/__init__.py") if path.parent.name not in {"tests"}
)
SECRET_MODULES = ("sealcrypto.key_server_secret", "sealcrypto.elgamal")
SECRET_NAMES = {"KeyServerSecret", "elgamal_decrypt", "ElGamalKeyPair"}


def imports_of(path: Path) -> list[tuple[str, str | None]]:
    """(module, imported name or None) for every import statement in the file, resolving relative imports."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found: list[tuple[str, str | None]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, module] if module else base)
            found += [(module, alias.name) for alias in node.names]
            found += [(f"{module}.{alias.name}", None) for alias in node.names]
    return found


def modules_in(*packages: str) -> list[Path]:
    return [path for package in packages for path in sorted((ROOT / package).rglob("*.py"))]


def is_or_under(module: str, target: str) -> bool:
    return module == target or module.startswith(target + ".")


class TestImportsOf:
    def test_finds_lazy_relative_and_aliased_imports(self, tmp_path, monkeypatch):
        import tests.relayer.test_exported_structure as me

        package = tmp_path / "pkg"
        package.mkdir()
        (package / "mod.py").write_text("def f():\n    from . import _keys as k\n    import sidecar._keys\n")
        monkeypatch.setattr(me, "ROOT", tmp_path)
        found = imports_of(package / "mod.py")
        assert ("pkg._keys", None) in found and ("sidecar._keys", None) in found


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
