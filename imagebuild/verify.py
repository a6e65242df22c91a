"""Rebuild the image from a clean copy of the checkout and compare its PCRs with published ones."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from imagebuild.errors import VerificationError

MAX_PUBLISHED_BYTES = 64 * 1024
MAX_ARCHIVE_BYTES = 256 * 1024**2
COMPARED_REGISTERS = ("PCR0", "PCR1", "PCR2", "PCR8")


@dataclass(frozen=True)
class Comparison:
    register: str
    published: str
    rebuilt: str

    @property
    def matches(self) -> bool:
        return self.published.lower() == self.rebuilt.lower()


def load_published(path: Path) -> dict[str, str]:
    """A pcrs.json as nitro-cli or `imagebuild build` writes it; nitro-cli's
    `{"Measurements": {...}}` wrapper is accepted too."""
    raw = path.read_bytes()
    if len(raw) > MAX_PUBLISHED_BYTES:
        raise VerificationError(f"{path.name} is larger than {MAX_PUBLISHED_BYTES} bytes")
    try:
        document = json.loads(raw)
    except ValueError as error:
        raise VerificationError(f"{path.name} is not JSON") from error
    if isinstance(document, dict) and isinstance(document.get("Measurements"), dict):
        document = document["Measurements"]
    if not isinstance(document, dict) or not isinstance(document.get("PCR0"), str):
        raise VerificationError(f"{path.name} has no PCR0")
    return {key: value for key, value in document.items() if key in COMPARED_REGISTERS and isinstance(value, str)}


def compare(published: dict[str, str], rebuilt: dict[str, str]) -> list[Comparison]:
    return [Comparison(key, published[key], rebuilt.get(key, "(absent)")) for key in COMPARED_REGISTERS if key in published]


def format_table(rows: list[Comparison]) -> str:
    lines = [f"{'register':<9} {'result':<9} published / rebuilt"]
    for row in rows:
        lines.append(f"{row.register:<9} {'match' if row.matches else 'MISMATCH':<9} {row.published}")
        lines.append(f"{'':<19} {row.rebuilt}")
    return "\n".join(lines)


def export_checkout(repository: Path, destination: Path, *, worktree: bool) -> None:
    """`git archive HEAD`, or (worktree=True) the tracked and untracked-but-not-ignored files."""
    if worktree:
        listing = subprocess.run(
            ["git", "-C", str(repository), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            capture_output=True, check=False,
        )
        if listing.returncode != 0:
            raise VerificationError(f"git ls-files failed: {listing.stderr.decode(errors='replace').strip()}")
        for name in sorted(set(filter(None, listing.stdout.decode().split("\0")))):
            source = repository / name
            if source.is_file() and not source.is_symlink():
                target = destination / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(source.read_bytes())
        return
    archive = subprocess.run(["git", "-C", str(repository), "archive", "--format=tar", "HEAD"], capture_output=True, check=False)
    if archive.returncode != 0:
        raise VerificationError(f"git archive failed: {archive.stderr.decode(errors='replace').strip()}")
    if len(archive.stdout) > MAX_ARCHIVE_BYTES:
        raise VerificationError("git archive output is too large")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(destination, filter="data")


def rebuild(repository: Path, *, cache: Path, worktree: bool) -> dict[str, str]:
    """Run the checkout's own builder in a fresh directory, in a separate process."""
    with tempfile.TemporaryDirectory(prefix="imagebuild-verify-") as scratch:
        checkout, out = Path(scratch) / "src", Path(scratch) / "out"
        checkout.mkdir()
        export_checkout(repository, checkout, worktree=worktree)
        result = subprocess.run(
            [sys.executable, "-m", "imagebuild", "build", "--out", str(out), "--cache", str(cache)], cwd=checkout, check=False
        )
        if result.returncode != 0:
            raise VerificationError(f"the rebuild failed with exit code {result.returncode}")
        return json.loads((out / "pcrs.json").read_text())
