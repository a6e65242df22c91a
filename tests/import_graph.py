"""Reading the project's imports with ``ast`` (nothing is imported): lazy imports inside functions count,
``if TYPE_CHECKING:`` blocks do not (they never run). Shared by the import-rule tests.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def top_level_packages(root: Path = ROOT) -> list[str]:
    return sorted(path.parent.name for path in root.glob("*/__init__.py"))


def modules_in(*packages: str, root: Path = ROOT) -> list[Path]:
    return [path for package in packages for path in sorted((root / package).rglob("*.py"))]


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_or_under(module: str, target: str) -> bool:
    return module == target or module.startswith(target + ".")


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node except those under ``if TYPE_CHECKING:``."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from (sub for child in node.orelse for sub in [child, *_runtime_nodes(child)])
            continue
        yield node
        yield from _runtime_nodes(node)


def imports_of(path: Path, root: Path = ROOT) -> list[tuple[str, str | None]]:
    """(module, imported name or None) for every import statement in the file, resolving relative imports.

    ``from a import b`` yields ``("a", "b")`` and ``("a.b", None)``, since ``b`` may be a submodule.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
    found: list[tuple[str, str | None]] = []
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                parts = package.split(".")
                base = parts[: len(parts) - node.level + 1]
                module = ".".join([*base, module] if module else base)
            found += [(module, alias.name) for alias in node.names]
            found += [(f"{module}.{alias.name}", None) for alias in node.names]
    return found


def module_path(module: str, root: Path = ROOT) -> Path | None:
    """The file of one of our modules, or None (third-party, standard library, or an attribute)."""
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@cache
def loaded_modules(path: Path, root: Path = ROOT) -> frozenset[str]:
    """Our modules that importing ``path`` loads directly, parent packages included."""
    loaded: set[str] = set()
    for module, _ in imports_of(path, root):
        parts = module.split(".")
        for end in range(1, len(parts) + 1):
            prefix = ".".join(parts[:end])
            if module_path(prefix, root) is not None:
                loaded.add(prefix)
    return frozenset(loaded)
