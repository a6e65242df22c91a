"""Issue 4's closing check: clients pin the PCRs the reproducible build publishes.

Two real image builds — this tree, and a copy with one changed byte — then an enclave whose
simulator reports the first build's PCRs: the attested client accepts it when pinned to that
build's pcrs.json, and rejects it when pinned to the changed tree's.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from attestation.errors import PolicyError
from attestation.measurements import load_expected_pcrs
from imagebuild.build import REPOSITORY_ROOT, build_image
from imagebuild.verify import export_checkout

from .conftest import make_runtime, serving
from .test_client import connect

# Builds the image twice: with the kernel compiled from source, that belongs after `make image` (make test-boot).
pytestmark = [pytest.mark.slow, pytest.mark.image, pytest.mark.timeout(3600)]


def _build(tmp_path: Path, name: str, *, change_one_byte: bool) -> dict[int, bytes]:
    checkout = tmp_path / name / "src"
    checkout.mkdir(parents=True)
    export_checkout(REPOSITORY_ROOT, checkout, worktree=True)
    if change_one_byte:
        target = checkout / "relayer" / "compatibility.py"
        target.write_bytes(target.read_bytes().replace(b'API_VERSION = "1.0.0"', b'API_VERSION = "1.0.1"', 1))
    result = build_image(checkout=checkout, out=tmp_path / name / "out", cache=REPOSITORY_ROOT / "build" / "cache", progress=lambda _: None)
    published = json.loads(result.pcrs_path.read_text())
    return {index: bytes.fromhex(published[f"PCR{index}"]) for index in (0, 1, 2)}


async def test_client_pins_the_published_build(tmp_path, tee_pki):
    built = _build(tmp_path, "published", change_one_byte=False)
    changed = _build(tmp_path, "changed", change_one_byte=True)
    assert built[1] == changed[1] and built[0] != changed[0] and built[2] != changed[2]
    runtime = make_runtime(tee_pki, boot_pcrs=built)
    async with serving(runtime) as url:
        async with connect(url, tee_pki, pcrs=built) as session:
            assert (await session.http.get("/health")).status_code == 200
        with pytest.raises(PolicyError, match="PCR0 mismatch"):
            async with connect(url, tee_pki, pcrs=changed):
                pass
    # The same pcrs.json an auditor publishes loads as the client's policy.
    document = json.dumps({f"PCR{i}": value.hex() for i, value in built.items()})
    assert load_expected_pcrs(document) is not None
