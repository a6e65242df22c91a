"""Session chains: append latency and a 20-turn window read against the session's length.

    python -m bench session_chains [--lengths 10,100] [--samples 5]

One DevStack (localnet). For each length L (a fresh account each, so one session's chain listing is not
padded by another's blobs) the bench appends L turns through ``POST /api/sessions/append``, then measures,
interleaved, ``--samples`` times each:
- append: one more turn (compare-and-append on the known head) — O(1) in L (relayer/sessions/chain_index.py);
- read 20: ``POST /api/sessions/read`` with ``last_n=20`` (every link verified);
- read 1: ``last_n=1``, the same request for the head alone: the baseline a 20-turn read is compared with
  (frames are fetched in one parallel round, so 20 turns should cost far less than 20 × one).
Comparison rows: read 20 vs read 1 at each length, and append / read 20 at each length vs the shortest.
Building 1,000 turns means 1,000 sequential appends on localnet (each a Walrus upload and a Sui
transaction, about 75 s in all): pass ``--lengths 10,100,1000`` for the full picture. Writes build/bench/session_chains.json.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from bench.common import COMPARISON_COLUMNS, Comparison, LatencySummary, print_table, write_report
from bench.relayer import Signer
from devtools.devstack import DevStack
from localnet.cli import create_account

RELAYER_ENV = {"RATE_LIMIT_DISABLED": "1", "LOG_FORMAT": "json"}


class AccountSigner(Signer):
    """bench.relayer.Signer for another account of the same stack."""

    def __init__(self, stack: DevStack, account: object) -> None:
        original = stack.account
        stack.account = account
        try:
            super().__init__(stack)
        finally:
            stack.account = original


async def append(signer: Signer, http: httpx.AsyncClient, session_id: str, text: str, expected_head: int) -> dict:
    payload = {"session_id": session_id, "role": "user" if expected_head % 2 else "assistant", "text": text,
               "expected_head": expected_head}
    return (await signer.post(http, "/api/sessions/append", payload, session=True)).json()


async def read(signer: Signer, http: httpx.AsyncClient, session_id: str, last_n: int) -> dict:
    return (await signer.post(http, "/api/sessions/read", {"session_id": session_id, "last_n": last_n}, session=True)).json()


async def measure_length(stack: DevStack, http: httpx.AsyncClient, length: int, samples: int) -> dict:
    signer = AccountSigner(stack, await create_account(stack.info, label=f"bench-session-{length}"))
    session_id = f"bench-{length}-{uuid.uuid4().hex[:6]}"
    started = time.perf_counter()
    build_ms = []
    for sequence in range(length):
        turn_started = time.perf_counter()
        await append(signer, http, session_id, f"turn {sequence}: " + "lorem ipsum " * 20, sequence - 1)
        build_ms.append((time.perf_counter() - turn_started) * 1000)
    build_seconds = time.perf_counter() - started
    append_ms: list[float] = []
    read20_ms: list[float] = []
    read1_ms: list[float] = []
    head = length - 1
    for _ in range(samples):
        for name, samples_list in (("read20", read20_ms), ("read1", read1_ms), ("append", append_ms)):
            sample_started = time.perf_counter()
            if name == "append":
                await append(signer, http, session_id, "one more turn", head)
                head += 1
            else:
                window = await read(signer, http, session_id, 20 if name == "read20" else 1)
                if len(window["turns"]) != min(20 if name == "read20" else 1, head + 1):
                    raise RuntimeError(f"read returned {len(window['turns'])} turns")
            samples_list.append((time.perf_counter() - sample_started) * 1000)
    print(f"length {length}: built in {build_seconds:.1f} s; append p50 {statistics.median(append_ms):.0f} ms, "
          f"read 20 p50 {statistics.median(read20_ms):.0f} ms, read 1 p50 {statistics.median(read1_ms):.0f} ms")
    return {
        "length": length, "build_seconds": build_seconds, "build_append_ms": LatencySummary.of(build_ms).__dict__,
        "append_ms": append_ms, "read20_ms": read20_ms, "read1_ms": read1_ms,
    }


async def run(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-sessions-") as directory:
        async with DevStack(Path(directory), relayer_env=RELAYER_ENV) as stack, httpx.AsyncClient(timeout=120) as http:
            results = [await measure_length(stack, http, length, args.samples) for length in args.lengths]
    return {"lengths": args.lengths, "samples": args.samples, "results": results}


def comparisons(report: dict) -> list[Comparison]:
    rows = []
    results = report["results"]
    shortest = results[0]
    for result in results:
        rows.append(Comparison.of_rounds(
            "session_chains", f"read at length {result['length']}", subject="last 20 turns", baseline="head only",
            unit="ms", subject_rounds=result["read20_ms"], baseline_rounds=result["read1_ms"], goal="≪ 20 (one fetch round)"))
    for result in results[1:]:
        for metric, key in (("append", "append_ms"), ("read 20 turns", "read20_ms")):
            rows.append(Comparison.of_rounds(
                "session_chains", metric, subject=f"length {result['length']}", baseline=f"length {shortest['length']}",
                unit="ms", subject_rounds=result[key], baseline_rounds=shortest[key]))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench session_chains", description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=lambda text: [int(part) for part in text.split(",")], default=[10, 100],
                        help="session lengths to build and measure (default: 10,100)")
    parser.add_argument("--samples", type=int, default=5, help="measurements of each kind per length (default: 5)")
    args = parser.parse_args()
    if not args.lengths or min(args.lengths) < 1 or args.samples < 1:
        parser.error("lengths and samples must be positive")
    report = asyncio.run(run(args))
    compared = comparisons(report)
    print_table("session chains", COMPARISON_COLUMNS, [comparison.row() for comparison in compared])
    print(f"\nreport: {write_report('session_chains', report, compared)}")


if __name__ == "__main__":
    main()
