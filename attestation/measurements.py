"""Expected measurements (``pcrs.json``) → a :class:`PCRs` policy.

Accepted shapes, with nitro-cli's key names:

* ``{"HashAlgorithm": "Sha384 { ... }", "PCR0": "<hex>", "PCR1": "<hex>", ...}`` (the file our
  image build writes; ``HashAlgorithm`` is optional and must name SHA-384), and
* the output of ``nitro-cli build-enclave`` / ``describe-eif``, where the same
  keys sit under ``"Measurements"`` next to ``"HashAlgorithm"``.

Any other key is an error, so a typo such as ``"PCRO"`` cannot silently drop a check.
"""

from __future__ import annotations

import json
import re

from .policy import PCRs

MAX_MEASUREMENTS_SIZE = 64 * 1024
_PCR_KEY = re.compile(r"PCR(0|[1-9][0-9]?)")


def load_expected_pcrs(text: str | bytes) -> PCRs:
    """Parse a pcrs.json document; raise ValueError if it is malformed."""
    if len(text) > MAX_MEASUREMENTS_SIZE:
        raise ValueError(f"measurements file is larger than {MAX_MEASUREMENTS_SIZE} bytes")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"measurements file is not JSON: {error}") from None
    if not isinstance(data, dict):
        raise ValueError("measurements file must hold a JSON object")
    if "Measurements" in data:
        data = data["Measurements"]
        if not isinstance(data, dict):
            raise ValueError('"Measurements" must be a JSON object')
    algorithm = data.get("HashAlgorithm")
    if algorithm is not None and not (isinstance(algorithm, str) and algorithm.startswith("Sha384")):
        raise ValueError(f"unsupported HashAlgorithm {algorithm!r} (Nitro PCRs are SHA-384)")
    data = {key: value for key, value in data.items() if key != "HashAlgorithm"}
    expected: dict[int, bytes] = {}
    for key, value in data.items():
        match = _PCR_KEY.fullmatch(key) if isinstance(key, str) else None
        if match is None:
            raise ValueError(f"unexpected key {key!r} in measurements file (expected PCR0, PCR1, ...)")
        if not isinstance(value, str):
            raise ValueError(f"{key} must be a hex string")
        try:
            expected[int(match.group(1))] = bytes.fromhex(value)
        except ValueError:
            raise ValueError(f"{key} is not valid hex") from None
    return PCRs(expected)
