"""Attestation verify time per real AWS Nitro document, against decoding alone as the same-run baseline.

    python -m bench attestation [--rounds N]

For each document in tests/assets/attestation, interleaved: decode only (CBOR + bounds) vs the full archived
verify (decode → chain at the document's time → ES384 signature → policy). Writes build/bench/attestation.json.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from attestation import AttestationDocument, UnsafeAllowDebugMode, UnsafeNoOp, Verifier
from attestation.policy import AllOf
from bench.common import Comparison, LatencySummary, print_table, write_report

DOCUMENTS = ("anjuna_sample_prod_doc", "base_2026_indefinite_repaired", "evervault_beta_debug")
ASSETS = Path(__file__).resolve().parent.parent / "tests" / "assets" / "attestation"


def _timed_interleaved(subject, baseline, rounds: int) -> tuple[list[float], list[float]]:
    """Milliseconds of each call, one of each per round, so both see the same machine load."""
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(rounds):
        for call, into in ((subject, samples[0]), (baseline, samples[1])):
            started = time.perf_counter()
            call()
            into.append((time.perf_counter() - started) * 1000.0)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench attestation", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200, help="timed verifications per document [200]")
    args = parser.parse_args()
    verifier = Verifier.aws()
    # Measurement policy is the caller's; here only the cryptographic work is timed.
    policy = AllOf([UnsafeAllowDebugMode(), UnsafeNoOp()])
    rows, report, comparisons = [], {}, []
    for name in DOCUMENTS:
        raw = (ASSETS / f"{name}.bin").read_bytes()
        verify_ms, decode_ms = _timed_interleaved(
            lambda: verifier.verify_archived(raw, policy=policy), lambda: AttestationDocument.from_cose(raw), args.rounds
        )
        decode, verify = LatencySummary.of(decode_ms), LatencySummary.of(verify_ms)
        ratio = verify.p50_ms / decode.p50_ms
        comparisons.append(Comparison.of_chunks(
            "attestation", f"verify a real AWS document ({name})", subject="full verify", baseline="decode only",
            unit="ms", subject_samples=verify_ms, baseline_samples=decode_ms, rounds=10,
        ))  # fmt: skip
        rows.append([name, decode.p50_ms, verify.p50_ms, verify.p99_ms, ratio])
        report[name] = {"decode": decode.__dict__, "verify": verify.__dict__, "verify_over_decode_p50": ratio}
    print_table("attestation verify (archived, real AWS documents)", ["document", "decode p50 ms", "verify p50 ms", "verify p99 ms", "verify/decode"], rows)
    print(f"\nreport: {write_report('attestation', {'rounds': args.rounds, 'documents': report}, comparisons)}")


if __name__ == "__main__":
    main()
