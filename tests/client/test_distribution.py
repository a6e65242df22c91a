"""The client distribution (client/pyproject.toml) is self-contained: its packages import only each other,
the standard library and the dependencies it declares, and the wheel holds exactly those packages."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

from packaging.requirements import Requirement

from tests.import_graph import ROOT, imports_of, modules_in

CLIENT = ROOT / "client"
# Import names of the declared distributions (and of what they bring that our code imports directly).
IMPORT_NAMES = {"memwal": {"memwal"}, "httpx": {"httpx"}, "cryptography": {"cryptography"}, "cbor2": {"cbor2"}}


def project() -> dict:
    return tomllib.loads((CLIENT / "pyproject.toml").read_text())


def test_packages_import_only_each_other_the_standard_library_and_declared_dependencies():
    packages = project()["tool"]["setuptools"]["packages"]
    declared = {Requirement(text).name for text in project()["project"]["dependencies"]}
    allowed = set(packages) | {name for dist in declared for name in IMPORT_NAMES[dist]} | set(sys.stdlib_module_names)
    offenders = sorted(
        f"{path.relative_to(ROOT)}: {module}"
        for path in modules_in(*packages)
        for module, _ in imports_of(path)
        if module and module.split(".")[0] not in allowed
    )
    assert offenders == []


def test_the_wheel_holds_the_three_packages_and_the_aws_root(tmp_path: Path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(CLIENT)],
        check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("memwal_enclave_client-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")} == {
        "attestation", "manifest", "memwal_enclave"}  # fmt: skip
    assert "attestation/_roots/aws_nitro_root_g1.pem" in names
    assert "memwal_enclave/sdk.py" in names and "attestation/verifier.py" in names
    entry_points = next(name for name in names if name.endswith("entry_points.txt"))
    assert "memwal-enclave = memwal_enclave._cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
