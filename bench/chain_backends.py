"""Latency of the Sui reads the relayer's auth path makes, per backend (GraphQL, gRPC, JSON-RPC), one run.

    python -m bench chain_backends [--rounds N] [--accounts N]

Starts a localnet in its own process (``python -m localnet``), creates accounts, then times, interleaved
round by round in a shuffled backend order (so drift and noise hit every backend alike):
- ``get_account``: the one read every signed request makes (upstream re-verifies even on a cache hit);
- ``registry_scan``: the fallback when a delegate key is unknown, walking every registry entry and
  reading each account until the key is found (here the last one: the worst case);
- ``key_server``: what the sidecar reads once per key server at start.
JSON-RPC, the former default, is the baseline; the ratios say what switching costs. Loopback only: the
numbers compare client and server-side work per protocol, not a real network's round trips.
Writes build/bench/chain_backends.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import Comparison, LatencySummary, percentile, print_table, write_report
from chain.backends import SUI_PROTOCOLS, make_chain_reader
from chain.reader import ChainReader
from localnet.cli import create_account

REPOSITORY = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT_SECONDS = 60.0
BASELINE = "jsonrpc"


async def _start_localnet(state: Path) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
    process = subprocess.Popen([sys.executable, "-m", "localnet", "--state", str(state), "--key-servers", "2"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment, cwd=REPOSITORY)
    info_path = state / "localnet.json"
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while not info_path.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("the localnet did not start")
        await asyncio.sleep(0.1)
    return process, json.loads(info_path.read_text())


def _url(info: dict[str, Any], protocol: str) -> str:
    return {"graphql": info["sui_graphql_url"], "grpc": info["sui_grpc_url"], "jsonrpc": info["sui_rpc_url"]}[protocol]


async def _registry_scan(reader: ChainReader, registry_id: str, public_key: bytes) -> str:
    async for account_id in reader.iter_registry_accounts(registry_id):
        account = await reader.get_account(account_id)
        if account is not None and account.has_delegate(public_key):
            return account_id
    raise LookupError("delegate key not found in the registry")


async def _measure(rounds: int, accounts: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-chain-") as directory:
        process, info = await _start_localnet(Path(directory))
        try:
            async with httpx.AsyncClient(timeout=30) as http:
                created = [await create_account(info, f"bench-{n}", http=http) for n in range(accounts)]
                target = created[-1]
                target_key = bytes.fromhex(target.delegate_public_key_hex)
                key_server = info["seal_key_servers"][1]["objectId"]  # the upgraded one: V1 and V2 records
                readers = {protocol: make_chain_reader(_url(info, protocol), protocol=protocol, http=http)
                           for protocol in SUI_PROTOCOLS}
                operations = {
                    "get_account": lambda reader: reader.get_account(target.account_id),
                    "registry_scan": lambda reader: _registry_scan(reader, info["memwal_registry_id"], target_key),
                    "key_server": lambda reader: reader.key_server(key_server),
                }
                samples: dict[str, dict[str, list[float]]] = {op: {p: [] for p in readers} for op in operations}
                order = list(readers)
                for reader in readers.values():  # warm connections and caches once, untimed
                    for operation in operations.values():
                        await operation(reader)
                for _ in range(rounds):
                    random.shuffle(order)
                    for protocol in order:
                        for name, operation in operations.items():
                            started = time.perf_counter()
                            await operation(readers[protocol])
                            samples[name][protocol].append((time.perf_counter() - started) * 1000.0)
                for reader in readers.values():
                    await reader.aclose()
        finally:
            process.terminate()
            process.wait(timeout=30)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench chain_backends", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60, help="interleaved rounds per backend [60]")
    parser.add_argument("--accounts", type=int, default=60, help="accounts in the registry (scan length) [60]")
    args = parser.parse_args()
    samples = asyncio.run(_measure(args.rounds, args.accounts))
    rows: list[list[object]] = []
    report: dict[str, dict[str, dict[str, float]]] = {}
    comparisons = [
        Comparison.of_chunks(
            "chain_backends", f"Sui read {operation}", subject=protocol, baseline=BASELINE, unit="ms",
            subject_samples=per_protocol[protocol], baseline_samples=per_protocol[BASELINE], rounds=10,
        )
        for operation, per_protocol in samples.items() for protocol in per_protocol if protocol != BASELINE
    ]  # fmt: skip
    for operation, per_protocol in samples.items():
        baseline = percentile(per_protocol[BASELINE], 0.5)
        report[operation] = {}
        for protocol, values in per_protocol.items():
            summary = LatencySummary.of(values)
            spread = {"p10_ms": percentile(values, 0.1), "p90_ms": percentile(values, 0.9),
                      "stdev_ms": statistics.stdev(values) if len(values) > 1 else 0.0}
            ratio = summary.p50_ms / baseline
            rows.append([operation, protocol, summary.p50_ms, spread["p10_ms"], spread["p90_ms"], summary.p99_ms,
                         spread["stdev_ms"], ratio])
            report[operation][protocol] = {**summary.__dict__, **spread, "p50_over_jsonrpc": ratio}
    print_table(f"Sui reads of the auth path on localnet ({args.rounds} interleaved rounds, {args.accounts} accounts)",
                ["read", "backend", "p50 ms", "p10 ms", "p90 ms", "p99 ms", "stdev ms", "p50 / jsonrpc"], rows)
    print(f"\nreport: {write_report('chain_backends', {'rounds': args.rounds, 'accounts': args.accounts, 'reads': report}, comparisons)}")


if __name__ == "__main__":
    main()
