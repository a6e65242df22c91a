"""Attestation verify time per real AWS Nitro document, against decoding alone as the same-run baseline.

    python -m bench attestation [--rounds N]

For each document in tests/assets/attestation: decode only (CBOR + bounds) vs the full archived verify
(decode → chain at the document's time → ES384 signature → policy). Writes build/bench/attestation.json.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from attestation import AttestationDocument, UnsafeAllowDebugMode, UnsafeNoOp, Verifier
from attestation.policy import AllOf
from bench.common import LatencySummary, print_table, write_report

DOCUMENTS = ("anjuna_sample_prod_doc", "base_2026_indefinite_repaired", "evervault_beta_debug")
ASSETS = Path(__file__).resolve().parent.parent / "tests" / "assets" / "attestation"


def _timed(call, rounds: int) -> LatencySummary:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000.0)
    return LatencySummary.of(samples)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench attestation", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200, help="timed verifications per document [200]")
    args = parser.parse_args()
    verifier = Verifier.aws()
    # Measurement policy is the caller's; here only the cryptographic work is timed.
    policy = AllOf([UnsafeAllowDebugMode(), UnsafeNoOp()])
    rows, report = [], {}
    for name in DOCUMENTS:
        raw = (ASSETS / f"{name}.bin").read_bytes()
        decode = _timed(lambda: AttestationDocument.from_cose(raw), args.rounds)
        verify = _timed(lambda: verifier.verify_archived(raw, policy=policy), args.rounds)
        ratio = verify.p50_ms / decode.p50_ms
        rows.append([name, decode.p50_ms, verify.p50_ms, verify.p99_ms, ratio])
        report[name] = {"decode": decode.__dict__, "verify": verify.__dict__, "verify_over_decode_p50": ratio}
    print_table("attestation verify (archived, real AWS documents)", ["document", "decode p50 ms", "verify p50 ms", "verify p99 ms", "verify/decode"], rows)
    print(f"\nreport: {write_report('attestation', {'rounds': args.rounds, 'documents': report})}")


if __name__ == "__main__":
    main()
