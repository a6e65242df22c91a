"""Which of the project's modules go into the image: exactly what the entry point imports, transitively.

Start at ``ENTRY_MODULES`` (what /init executes) and follow every ``import`` of the project's own packages,
found by a static walk of the source (``ast``), including imports inside functions, ``importlib.import_module``
with a constant name, and ``python -m <module>`` child processes (a ``"-m", "<name>"`` pair of constants
among a call's arguments or a list's items, as relayer/serve.py starts the sidecar). Imports under ``if TYPE_CHECKING:`` are not
runtime imports and are not followed. A module brings its parent packages' ``__init__.py`` and the
package data pyproject.toml declares for its package.

Everything else stays out, whatever the checkout holds: developer tools, localnet, the NSM simulator,
the test PKI, benchmarks, tests. ``FORBIDDEN`` names what must never be reached; reaching it is a build
error, not a silent inclusion. Third-party imports are collected (``external_imports``) for the check
that the locked wheels or the standard library provide them.
"""

from __future__ import annotations

import ast
import fnmatch
import itertools
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from imagebuild.errors import RootfsError

# What the image runs; relayer and sidecar are reached from here.
ENTRY_MODULES = ("enclave.__main__",)
# Dev and test code that must never be in the image (a module, or every module of a package).
FORBIDDEN = {
    "devtools": "developer tooling (make run, the simulated enclave entry)",
    "localnet": "stand-ins for Sui, Walrus, Seal and OpenAI",
    "bench": "benchmarks",
    "tests": "the test suite",
    "imagebuild": "the image builder itself",
    "attestation.simulator": "the NSM simulator",
    "attestation.testing": "the throwaway test PKI",
}
MAX_SOURCE_BYTES = 4 * 1024**2


@dataclass(frozen=True)
class ImageContents:
    modules: tuple[str, ...]  # dotted names, sorted
    files: tuple[str, ...]  # paths relative to the checkout: sources and package data, sorted
    external_imports: frozenset[str]  # top-level names of everything imported that is not ours
    reached_from: dict[str, str]  # module -> the module whose import brought it in (entry points: "")


def own_packages(checkout: Path) -> frozenset[str]:
    """Top-level directories of the checkout that are Python packages."""
    return frozenset(path.parent.name for path in checkout.glob("*/__init__.py"))


def module_path(checkout: Path, module: str) -> Path | None:
    base = checkout.joinpath(*module.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def derive_contents(
    checkout: Path, entries: Iterable[str] = ENTRY_MODULES, *, forbidden: Mapping[str, str] = FORBIDDEN
) -> ImageContents:
    """Walk the imports from ``entries``; raises RootfsError if a ``forbidden`` or missing module is reached.

    ``forbidden`` is FORBIDDEN for the image; the QEMU test boot's overlay (tests/boot) walks its dev-only
    entry point with a narrower one."""
    ours = own_packages(checkout)
    reached: dict[str, str] = {}
    external: set[str] = set()
    pending = [(entry, "") for entry in entries]
    while pending:
        module, importer = pending.pop()
        if module in reached:
            continue
        _refuse_forbidden(module, importer, reached, forbidden)
        path = module_path(checkout, module)
        if path is None:
            raise RootfsError(f"{importer or 'the entry points'} import(s) {module}, which is not in the checkout")
        reached[module] = importer
        parts = module.split(".")
        pending += [(".".join(parts[:length]), module) for length in range(1, len(parts))]
        for name, required in _imports(path, module, is_package=path.name == "__init__.py"):
            top = name.split(".")[0]
            if top not in ours:
                external.add(top)
            elif required or module_path(checkout, name) is not None:
                pending.append((name, module))
    files = {module_path(checkout, module).relative_to(checkout).as_posix() for module in reached}  # type: ignore[union-attr]
    files |= set(_package_data(checkout, reached))
    return ImageContents(tuple(sorted(reached)), tuple(sorted(files)), frozenset(external), reached)


def _refuse_forbidden(module: str, importer: str, reached: dict[str, str], forbidden: Mapping[str, str]) -> None:
    for name, why in forbidden.items():
        if module == name or module.startswith(name + "."):
            chain = [importer] if importer else []
            while chain and reached.get(chain[-1]):
                chain.append(reached[chain[-1]])
            path = " <- ".join([module, *chain])
            raise RootfsError(f"the image would contain {module} ({why}); imported via {path}")


def _imports(path: Path, module: str, *, is_package: bool) -> Iterator[tuple[str, bool]]:
    """(dotted name, whether it must be a module) for each import of the module at ``path``.

    ``from X import a`` gives (X, True) and (X.a, False): ``a`` is a submodule only if its file exists.
    """
    if path.stat().st_size > MAX_SOURCE_BYTES:
        raise RootfsError(f"{path} is larger than {MAX_SOURCE_BYTES} bytes")
    tree = ast.parse(path.read_bytes(), filename=str(path))
    package = module if is_package else module.rpartition(".")[0]
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            yield from ((alias.name, True) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(package, node.module, node.level, path)
            yield base, True
            yield from ((f"{base}.{alias.name}", False) for alias in node.names if alias.name != "*")
        elif isinstance(node, ast.Call):
            yield from ((name, True) for name in _dynamic_imports(node.func, node.args))
        elif isinstance(node, (ast.List, ast.Tuple)):
            yield from ((name, True) for name in _dynamic_imports(None, node.elts))


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node except the bodies of ``if TYPE_CHECKING:`` blocks."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _dynamic_imports(function: ast.expr | None, arguments: list[ast.expr]) -> Iterator[str]:
    """``import_module("x")``, and ``"-m", "x"`` among a call's arguments or a list's items (an argv)."""
    name = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", "")
    constants = [arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else None for arg in arguments]
    if name == "import_module" and constants and constants[0]:
        yield constants[0]
    for first, second in itertools.pairwise(constants):
        if first == "-m" and second:
            yield f"{second}.__main__"  # python -m package runs package/__main__.py after package/__init__.py


def _resolve(package: str, name: str | None, level: int, path: Path) -> str:
    if level == 0:
        assert name is not None
        return name
    parts = package.split(".") if package else []
    if level - 1 > len(parts):
        raise RootfsError(f"{path}: relative import beyond the top-level package")
    base = parts[: len(parts) - (level - 1)]
    return ".".join([*base, name] if name else base)


def _package_data(checkout: Path, modules: Iterable[str]) -> Iterator[str]:
    """Files pyproject.toml's [tool.setuptools.package-data] declares for the packages in the image."""
    pyproject = checkout / "pyproject.toml"
    declared: dict[str, list[str]] = {}
    if pyproject.is_file():
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        declared = data.get("tool", {}).get("setuptools", {}).get("package-data", {})
    packages = {module for module in modules if (checkout.joinpath(*module.split(".")) / "__init__.py").is_file()}
    for package, patterns in declared.items():
        if package not in packages:
            continue
        directory = checkout.joinpath(*package.split("."))
        for pattern in patterns:
            for match in sorted(directory.glob(pattern)):
                if match.is_file() and fnmatch.fnmatch(match.relative_to(directory).as_posix(), pattern):
                    yield match.relative_to(checkout).as_posix()


@dataclass(frozen=True)
class WheelRequirement:
    name: str  # canonical distribution name
    extras: frozenset[str]  # extras it asks of that distribution
    marker: str  # environment marker ("" = always), evaluated for the image and the extras asked of us


@dataclass(frozen=True)
class WheelInfo:
    """What selection needs from one wheel: its distribution name, top-level import names, requirements."""

    name: str  # canonical distribution name
    filename: str
    top_level: frozenset[str]
    requirements: tuple[WheelRequirement, ...]


# The image's interpreter and platform, for evaluating Requires-Dist markers.
IMAGE_MARKER_ENVIRONMENT = {
    "implementation_name": "cpython",
    "implementation_version": "3.11.2",
    "os_name": "posix",
    "platform_machine": "x86_64",
    "platform_python_implementation": "CPython",
    "platform_system": "Linux",
    "python_full_version": "3.11.2",
    "python_version": "3.11",
    "sys_platform": "linux",
}


def wheel_info(filename: str, wheel: bytes) -> WheelInfo:
    """Top-level names and requirements of a wheel, read from its members and METADATA."""
    import email.parser
    import io
    import zipfile

    from packaging.requirements import InvalidRequirement, Requirement

    from imagebuild.wheels import canonical_name

    with zipfile.ZipFile(io.BytesIO(wheel)) as archive:
        names = archive.namelist()
        metadata_name = next((name for name in names if name.count("/") == 1 and name.endswith(".dist-info/METADATA")), None)
        if metadata_name is None:
            raise RootfsError(f"{filename} has no .dist-info/METADATA")
        metadata = email.parser.Parser().parsestr(archive.read(metadata_name).decode("utf-8"), headersonly=True)
    top_level = set()
    for name in names:
        first = name.split("/")[0]
        if first.endswith((".dist-info", ".data")) or first == "__pycache__":
            continue
        if "/" in name:
            top_level.add(first)
        elif first.endswith((".py", ".so")):
            top_level.add(first.split(".")[0])
    requirements = []
    for text in metadata.get_all("Requires-Dist") or []:
        try:
            requirement = Requirement(text)
        except InvalidRequirement as error:
            raise RootfsError(f"{filename}: unreadable Requires-Dist {text!r}: {error}") from None
        marker = str(requirement.marker) if requirement.marker is not None else ""
        requirements.append(WheelRequirement(canonical_name(requirement.name), frozenset(requirement.extras), marker))
    return WheelInfo(canonical_name(metadata["Name"]), filename, frozenset(top_level), tuple(requirements))


def _applies(requirement: WheelRequirement, extras: frozenset[str]) -> bool:
    if not requirement.marker:
        return True
    from packaging.markers import Marker

    marker = Marker(requirement.marker)
    return any(marker.evaluate({**IMAGE_MARKER_ENVIRONMENT, "extra": extra}) for extra in ("", *sorted(extras)))


def select_wheels(
    external_imports: Iterable[str], wheels: Iterable[WheelInfo], *, unused: Iterable[str] = ()
) -> dict[str, str]:
    """The wheels the image needs: those providing an import of ours, and everything they require
    (with the extras each requirement asks for, e.g. pysui's ``betterproto2[grpclib]``), except the
    ``unused`` declared dependencies (the lock's ``unused_dependencies``: nothing in the image imports them).

    Returns canonical name -> why (``imported as X`` or ``required by Y``). An import that is neither the
    standard library nor provided by a locked wheel, or a requirement without a locked wheel, raises RootfsError.
    """
    import sys

    from imagebuild.wheels import canonical_name

    by_name = {wheel.name: wheel for wheel in wheels}
    skipped = {canonical_name(name) for name in unused}
    providers = {top: wheel.name for wheel in by_name.values() for top in wheel.top_level}
    why: dict[str, str] = {}
    extras_done: dict[str, frozenset[str]] = {}
    pending: list[tuple[str, frozenset[str], str]] = []
    for name in sorted(set(external_imports)):
        if name in providers:
            pending.append((providers[name], frozenset(), f"imported as {name}"))
        elif name not in sys.stdlib_module_names:
            raise RootfsError(f"the image's code imports {name!r}, which neither the standard library nor a locked wheel provides")
    while pending:
        distribution, extras, reason = pending.pop()
        wheel = by_name.get(distribution)
        if wheel is None:
            raise RootfsError(f"{reason.removeprefix('required by ')} requires {distribution}, which has no locked wheel")
        done = extras_done.get(distribution)
        if done is not None and extras <= done:
            continue
        asked = extras | (done or frozenset())
        extras_done[distribution] = asked
        why.setdefault(distribution, reason)
        for requirement in wheel.requirements:
            if requirement.name not in skipped and _applies(requirement, asked):
                pending.append((requirement.name, requirement.extras, f"required by {distribution}"))
    return why
