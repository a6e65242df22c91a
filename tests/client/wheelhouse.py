"""Wheels for an offline ``pip install ./client``: repacked from the shared venv's installed distributions.

The shared venv was installed from hash-pinned wheels (requirements*.lock); repacking its files (RECORD lists
them) gives pip in a fresh venv the same code without a network, so the test needs no index. Only what the
client's requirements reach is packed (plus setuptools, the build backend), and markers are honoured.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from email.parser import Parser
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

SKIPPED_METADATA = {"INSTALLER", "REQUESTED", "direct_url.json", "RECORD"}


def requirement_closure(requirements: list[str]) -> list[metadata.Distribution]:
    """The installed distributions ``requirements`` reach, each once."""
    pending = [Requirement(text) for text in requirements]
    found: dict[str, metadata.Distribution] = {}
    while pending:
        requirement = pending.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        name = canonicalize_name(requirement.name)
        if name in found:
            continue
        distribution = metadata.distribution(requirement.name)
        if distribution.version not in requirement.specifier:
            raise AssertionError(f"the shared venv has {name} {distribution.version}, outside {requirement}")
        found[name] = distribution
        pending += [Requirement(text) for text in distribution.requires or []]
    return list(found.values())


def repack(distribution: metadata.Distribution, directory: Path) -> Path:
    """Write ``distribution`` (as installed) as a wheel into ``directory``; return its path."""
    info = Path(str(distribution._path))  # type: ignore[attr-defined]  # the .dist-info directory
    site = info.parent
    wheel_metadata = Parser().parsestr((info / "WHEEL").read_text())
    tag = wheel_metadata.get_all("Tag")[0]
    name = canonicalize_name(distribution.metadata["Name"]).replace("-", "_")
    path = directory / f"{name}-{distribution.version}-{tag}.whl"
    records = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in distribution.files or []:
            relative = file.as_posix()
            if relative.startswith("..") or "__pycache__" in relative or relative.endswith(".pyc"):
                continue
            if relative.startswith(info.name + "/") and relative.split("/")[-1] in SKIPPED_METADATA:
                continue
            data = (site / relative).read_bytes()
            archive.writestr(relative, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            records.append(f"{relative},sha256={digest},{len(data)}")
        records.append(f"{info.name}/RECORD,,")
        archive.writestr(f"{info.name}/RECORD", "\n".join(records) + "\n")
    return path


def build_wheelhouse(requirements: list[str], directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    return [repack(distribution, directory) for distribution in requirement_closure([*requirements, "setuptools"])]


def client_requirements(pyproject: Path) -> list[str]:
    import tomllib

    return list(tomllib.loads(pyproject.read_text())["project"]["dependencies"])
