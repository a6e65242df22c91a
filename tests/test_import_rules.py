"""The import rules of docs/architecture.md, enforced on the source (read with ``ast``; nothing is imported).

1. Production packages never import developer or test code (``devtools``, ``localnet``, ``tests``, ``bench``).
2. ``attestation.testing`` (a throwaway PKI) and ``attestation.simulator`` (a simulated NSM) are loaded by
   no module of ``enclave/``, ``relayer/`` or ``sidecar/``, directly or through our other packages.
3. Packages import only downward: each package imports only the packages its row of the table in
   docs/architecture.md allows, and the table has no cycle.
"""

from __future__ import annotations

import re
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

from tests import import_graph
from tests.import_graph import ROOT, imports_of, is_or_under, loaded_modules, module_name, module_path, modules_in

PRODUCTION_PACKAGES = (
    "relayer", "enclave", "sidecar", "chain", "sealcrypto", "attestation", "host_proxy", "manifest", "memwal_common", "memwal_enclave",
)
DEVELOPER_PACKAGES = ("devtools", "localnet", "tests", "bench")
RUNTIME_PACKAGES = ("enclave", "relayer", "sidecar")  # what the enclave image runs
TEST_TOOLS = ("attestation.testing", "attestation.simulator")
# Runtime modules that still load a test tool, each with an xfail mark naming the issue (none today: the
# simulator is injected by devtools/simulated_enclave.py, never imported by enclave/).
KNOWN_VIOLATIONS: dict[str, pytest.MarkDecorator] = {}
ARCHITECTURE = ROOT / "docs" / "architecture.md"
_TABLE_ROW = re.compile(r"^\| `(?P<package>\w+)/` \| (?P<imports>[^|]*) \|")


def _relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def allowed_imports() -> dict[str, set[str]]:
    """The "may import" table of docs/architecture.md: package → the packages of ours it may import."""
    table: dict[str, set[str]] = {}
    for line in ARCHITECTURE.read_text(encoding="utf-8").splitlines():
        match = _TABLE_ROW.match(line)
        if match:
            table[match["package"]] = set(re.findall(r"`(\w+)`", match["imports"]))
    return table


def package_imports(package: str) -> dict[str, set[str]]:
    """Other top-level packages of ours that ``package`` imports → the files that do it."""
    ours = set(import_graph.top_level_packages())
    found: dict[str, set[str]] = {}
    for path in modules_in(package):
        for module, _ in imports_of(path):
            target = module.split(".")[0]
            if target in ours and target != package:
                found.setdefault(target, set()).add(_relative(path))
    return found


def reached_test_tools(path: Path, root: Path = ROOT) -> list[str]:
    """Chains of imports from ``path`` to a test tool, following our modules outside the runtime packages
    (runtime modules are checked one by one, so each violation is reported where it is written)."""
    found: list[str] = []
    seen: set[str] = set()
    pending = [(module, [module]) for module in sorted(loaded_modules(path, root))]
    while pending:
        module, chain = pending.pop()
        if module in seen:
            continue
        seen.add(module)
        if any(is_or_under(module, tool) for tool in TEST_TOOLS):
            found.append(" → ".join([path.relative_to(root).as_posix(), *chain]))
            continue
        target = module_path(module, root)
        if target is not None and module.split(".")[0] not in RUNTIME_PACKAGES:
            pending += [(next_module, [*chain, next_module]) for next_module in sorted(loaded_modules(target, root))]
    return found


class TestImportGraphHelpers:
    def test_finds_lazy_relative_and_aliased_imports(self, tmp_path: Path) -> None:
        package = tmp_path / "pkg"
        package.mkdir()
        (package / "__init__.py").write_text("")
        (package / "mod.py").write_text(
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    import devtools.appliance\n"
            "def f():\n    from . import _keys as k\n    import sidecar._keys\n"
        )
        found = imports_of(package / "mod.py", root=tmp_path)
        assert ("pkg._keys", None) in found and ("sidecar._keys", None) in found
        assert not any(module.startswith("devtools") for module, _ in found)  # never runs

    def test_loaded_modules_include_parent_packages(self) -> None:
        loaded = loaded_modules(ROOT / "localnet" / "execution.py")
        assert {"chain", "chain.programmable_transaction", "localnet", "localnet.move"} <= loaded
        assert module_name(ROOT / "chain" / "__init__.py") == "chain"


class TestProductionCodeImportsNoDeveloperCode:
    @pytest.mark.parametrize("package", PRODUCTION_PACKAGES)
    def test_package(self, package: str) -> None:
        offenders = [
            f"{_relative(path)}: {module}"
            for path in modules_in(package)
            for module, _ in imports_of(path)
            if module.split(".")[0] in DEVELOPER_PACKAGES
        ]
        assert offenders == []


def _runtime_module_cases() -> list[object]:
    cases: list[object] = []
    for path in modules_in(*RUNTIME_PACKAGES):
        relative = _relative(path)
        mark = KNOWN_VIOLATIONS.get(relative)
        cases.append(pytest.param(path, id=relative, marks=[mark] if mark else []))
    return cases


class TestRuntimeLoadsNoTestTools:
    def test_every_known_violation_is_a_runtime_module(self) -> None:
        assert all((ROOT / relative).is_file() for relative in KNOWN_VIOLATIONS)

    @pytest.mark.parametrize("path", _runtime_module_cases())
    def test_module(self, path: Path) -> None:
        assert reached_test_tools(path) == []

    def test_the_check_follows_other_packages(self, tmp_path: Path) -> None:
        files = {
            "relayer/__init__.py": "", "relayer/x.py": "import chain.y\n", "relayer/z.py": "import relayer.x\n",
            "chain/__init__.py": "", "chain/y.py": "from attestation import simulator\n",
            "attestation/__init__.py": "", "attestation/simulator.py": "",
        }  # fmt: skip
        for relative, source in files.items():
            (tmp_path / relative).parent.mkdir(exist_ok=True)
            (tmp_path / relative).write_text(source)
        assert reached_test_tools(tmp_path / "relayer" / "x.py", tmp_path) == [
            "relayer/x.py → chain.y → attestation.simulator"
        ]
        assert reached_test_tools(tmp_path / "relayer" / "z.py", tmp_path) == []  # reported at relayer/x.py


class TestPackagesImportOnlyDownward:
    def test_the_table_lists_every_package(self) -> None:
        packages = set(import_graph.top_level_packages()) - {"tests"}  # tests may import anything
        assert set(allowed_imports()) == packages

    def test_the_table_has_no_cycle(self) -> None:
        try:
            order = list(TopologicalSorter(allowed_imports()).static_order())
        except CycleError as error:
            pytest.fail(f"docs/architecture.md's import table has a cycle: {error.args[1]}")
        assert order

    @pytest.mark.parametrize("package", sorted(set(import_graph.top_level_packages()) - {"tests"}))
    def test_package_imports_only_what_its_row_allows(self, package: str) -> None:
        allowed = allowed_imports().get(package, set())
        unexpected = {target: sorted(files) for target, files in package_imports(package).items() if target not in allowed}
        assert unexpected == {}, f"{package}/ may import only {sorted(allowed)} (docs/architecture.md)"
