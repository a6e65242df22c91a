"""Read a manifest (TOML, the operator's file) or an enclave document (JSON, what the enclave receives).

Every read is capped before parsing (``MAX_MANIFEST_BYTES``); nesting is capped after (model.MAX_DEPTH),
and a parser that recurses too deep is reported like any other malformed input.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from .errors import ManifestError
from .model import EnclaveDocument, Manifest

MAX_MANIFEST_BYTES = 64 * 1024


def load_manifest(path: Path) -> Manifest:
    """Read and validate a manifest file; every error names the file."""
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_MANIFEST_BYTES + 1)
    except OSError as error:
        raise ManifestError(f"cannot read manifest {path}: {error.strerror or error}") from None
    try:
        return parse_manifest(raw)
    except ManifestError as error:
        raise ManifestError(f"manifest {path}: {error}") from None


def parse_manifest(raw: bytes) -> Manifest:
    if len(raw) > MAX_MANIFEST_BYTES:
        raise ManifestError(f"larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError) as error:
        raise ManifestError(f"not valid TOML: {error}") from None
    return Manifest.from_mapping(data)


def parse_enclave_document(raw: bytes) -> EnclaveDocument:
    """The JSON the host proxy serves: re-validated in full (the host is not trusted to have done it)."""
    if len(raw) > MAX_MANIFEST_BYTES:
        raise ManifestError(f"the enclave document is larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise ManifestError(f"the enclave document is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise ManifestError("the enclave document must be a JSON object")
    return EnclaveDocument.from_mapping(data)
