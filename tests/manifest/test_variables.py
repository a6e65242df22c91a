"""Every environment variable the image's code reads belongs to exactly one source (manifest/variables.py).

The image's modules are the ones imagebuild/contents.py derives from `python -m enclave`; the runtime's
own modules read none (the platform is injected), so this covers the relayer and sidecar as they run inside.
"""

import ast
from pathlib import Path

from attestation.provisioning import PROVISIONABLE_SECRETS
from imagebuild.contents import derive_contents, module_path
from manifest.variables import RELAYER_VARIABLES, RUNTIME_VARIABLES, URL_LIST_VARIABLES, URL_VARIABLES

REPOSITORY = Path(__file__).resolve().parents[2]
READERS = ("get", "env_int", "env_flag", "getenv")


def variables_read(paths: list[Path]) -> set[str]:
    """Upper-case string constants passed to env.get/env_int/env_flag/os.getenv or used as os.environ[...]."""
    names: set[str] = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            candidates: list[ast.expr] = []
            if isinstance(node, ast.Call):
                function = node.func
                name = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", "")
                if name in READERS:
                    candidates = list(node.args[:2])
            elif isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and node.value.attr == "environ":
                candidates = [node.slice]
            for candidate in candidates:
                if isinstance(candidate, ast.Constant) and isinstance(candidate.value, str):
                    text = candidate.value
                    if text.isupper() and text.replace("_", "").isalnum() and len(text) > 2:
                        names.add(text)
    return names


def image_sources() -> list[Path]:
    modules = derive_contents(REPOSITORY).modules
    return [path for module in modules if (path := module_path(REPOSITORY, module)) is not None]


def test_every_variable_has_exactly_one_source():
    read = variables_read(image_sources())
    sources = {"manifest": RELAYER_VARIABLES, "runtime": RUNTIME_VARIABLES, "provisioning": PROVISIONABLE_SECRETS}
    unclaimed = sorted(name for name in read if not any(name in names for names in sources.values()))
    assert unclaimed == [], f"read by the relayer or sidecar but neither manifest, runtime nor provisioning: {unclaimed}"
    for first, first_names in sources.items():
        for second, second_names in sources.items():
            if first < second:
                assert not first_names & second_names, f"{first} and {second} both claim {first_names & second_names}"


def test_the_scan_finds_what_it_should():
    read = variables_read(image_sources())
    assert {"MEMWAL_PACKAGE_ID", "OPENAI_API_KEY", "BIND", "MEMWAL_BUILD_COMMIT", "SEAL_KEY_SERVER_TIMEOUT_MS"} <= read


def test_url_variables_are_manifest_variables():
    assert set(URL_VARIABLES) | set(URL_LIST_VARIABLES) <= RELAYER_VARIABLES
