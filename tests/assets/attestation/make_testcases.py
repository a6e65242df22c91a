"""Generate the broken and re-wrapped variants of the real Nitro documents in this folder.

Run from the repository root:  python tests/assets/attestation/make_testcases.py

Every output is deterministic (the test PKI uses a seeded stream and RFC 6979
signatures), and tests/attestation/test_testcases.py checks that the files on
disk are exactly what this script produces. ``testcases.json`` records, for
each file, the error the verifier must raise at the source document's time.
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path

import cbor2

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

from attestation.cose import CoseSign1  # noqa: E402
from attestation.document import AttestationDocument  # noqa: E402
from attestation.testing import (  # noqa: E402
    TestPki,
    deterministic_rng,
    encode_payload,
    milliseconds_since_epoch,
    sign_cose,
)

SOURCE = "anjuna_sample_prod_doc.bin"


def _rewrap(raw: bytes, payload: bytes) -> bytes:
    envelope = CoseSign1.from_bytes(raw)
    return CoseSign1(protected=envelope.protected, payload=payload, signature=envelope.signature).to_bytes()


def build_testcases() -> dict[str, tuple[bytes, str | None, str]]:
    """name → (document bytes, expected error class name or None, message pattern)."""
    raw = (HERE / SOURCE).read_bytes()
    document = AttestationDocument.from_cose(raw)
    envelope = CoseSign1.from_bytes(raw)
    cases: dict[str, tuple[bytes, str | None, str]] = {}

    flipped = bytearray(raw)
    flipped[-1] ^= 0x01  # last byte of the raw r||s signature
    cases["flipped_signature_bit.bin"] = (bytes(flipped), "SignatureError", "does not verify")

    pcr0 = document.unverified_pcrs[0]
    offset = raw.index(pcr0)
    edited = bytearray(raw)
    edited[offset + 7] ^= 0x80  # one byte of PCR0, in place: lengths and structure unchanged
    cases["edited_pcr0_byte.bin"] = (bytes(edited), "SignatureError", "does not verify")

    cases["truncated.bin"] = (raw[:-100], "DecodeError", "truncated|runs past")
    cases["tag18_wrapped.bin"] = (b"\xd2" + raw, None, "")
    cases["trailing_bytes.bin"] = (raw + b"\x00", "DecodeError", "trailing bytes")
    cases["trailing_bytes_in_payload.bin"] = (_rewrap(raw, envelope.payload + b"\x00"), "DecodeError", "trailing bytes")

    # The source payload is a definite 9-entry map (0xa9): make it 10 entries, repeating "nonce".
    assert envelope.payload[0] == 0xA9
    duplicated = b"\xaa" + envelope.payload[1:] + cbor2.dumps("nonce") + b"\xf6"
    cases["duplicate_key.bin"] = (_rewrap(raw, duplicated), "DecodeError", "Duplicate")

    # A well-formed document under a different (test) root, at the source document's time.
    signed_at = document.unverified_timestamp
    pki = TestPki.create(now=signed_at - timedelta(hours=1), rng=deterministic_rng(b"make_testcases wrong root"))
    leaf = pki.issue_leaf(module_id=document.unverified_module_id, not_before=signed_at - timedelta(minutes=1))
    payload = encode_payload(
        module_id=document.unverified_module_id,
        timestamp_ms=milliseconds_since_epoch(signed_at),
        pcrs=document.unverified_pcrs,
        certificate=leaf.der,
        cabundle=pki.cabundle,
        public_key=None,
        user_data=None,
        nonce=None,
    )
    cases["wrong_root.bin"] = (sign_cose(payload, leaf.private_key), "CertificateChainError", "pinned root")
    cases["wrong_root_test_root.pem"] = (pki.root_pem, None, "")
    return cases


def main() -> None:
    manifest = {}
    for name, (content, error, pattern) in sorted(build_testcases().items()):
        (HERE / name).write_bytes(content)
        if name.endswith(".bin"):
            manifest[name] = {"source": SOURCE, "error": error, "match": pattern}
    (HERE / "testcases.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    print(f"wrote {len(manifest)} test documents and testcases.json")


if __name__ == "__main__":
    main()
