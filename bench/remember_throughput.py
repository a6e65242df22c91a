"""Remember throughput: memories done per second end to end, and the CPU the stack spends on them.

    python -m bench remember_throughput [--memories 60] [--rounds 3] [--wallets 4] [--in-flight 4] [--batch 8]

Two DevStacks run side by side and take turns (rounds interleaved, so both see the same machine load):
- baseline: one server wallet, one transaction in flight (``SERVER_WALLET_MAX_IN_FLIGHT=1``), the
  default job and upload concurrency, and the localnet saving its whole state after every transaction
  as it did before its journal (``--snapshot-every-transaction``);
- subject: ``--wallets`` server wallets (``localnet --server-wallets``), ``--in-flight`` transactions per
  wallet, job workers and publish slots raised to match, each transfer alone (``SERVER_WALLET_BATCH_MAX_BLOBS=1``);
- batched: the subject with twice the publish slots and up to ``--batch`` queued jobs per transfer
  transaction (``sidecar.transfer_batches``; jobs queue for gas coins, there being twice as many workers).
Each round submits ``--memories`` signed ``POST /api/remember`` (16 clients) and polls until every job is
done; done/s = memories / seconds. CPU is the user+system time of the stack's processes (localnet,
relayer, sidecar, indexer; the databases are not counted) over the round, in cores busy. Goal (#11):
subject ≥ 3 × baseline done/s. Comparison rows: done/s and the stack's CPU per memory (subject and batched
against the baseline, batched against the subject). Writes
build/bench/remember_throughput.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from bench.common import COMPARISON_COLUMNS, Comparison, print_table, write_report
from bench.relayer import Signer, wait_until_done
from devtools.devstack import DevStack

NAMESPACE = "bench-remember"
CLIENTS = 16


@dataclass(frozen=True)
class Variant:
    name: str
    wallets: int
    in_flight: int
    job_concurrency: int | None  # None: the relayer's default
    upload_concurrency: int | None
    localnet_args: tuple[str, ...] = ()
    batch: int = 1  # SERVER_WALLET_BATCH_MAX_BLOBS

    def relayer_env(self) -> dict[str, str]:
        env = {"RATE_LIMIT_DISABLED": "1", "LOG_FORMAT": "json", "SERVER_WALLET_MAX_IN_FLIGHT": str(self.in_flight),
               "SERVER_WALLET_BATCH_MAX_BLOBS": str(self.batch)}
        if self.job_concurrency is not None:
            env["WALLET_JOB_CONCURRENCY"] = str(self.job_concurrency)
        if self.upload_concurrency is not None:
            env["WALRUS_UPLOAD_CONCURRENCY"] = str(self.upload_concurrency)
        return env


def subject_variant(wallets: int, in_flight: int) -> Variant:
    """The subject: job workers twice the transactions in flight, as many publish slots as transactions."""
    return Variant(f"subject ({wallets} wallets, {in_flight} in flight each)", wallets, in_flight,
                   wallets * in_flight * 2, wallets * in_flight)


def stack_cpu_seconds(stack: DevStack) -> dict[str, float]:
    """User + system seconds so far of each stack child and everything it started (the sidecar)."""
    seconds: dict[str, float] = {}
    for child in (stack.localnet, stack.relayer, stack.indexer):
        if child is None or child.process is None:
            continue
        total = 0.0
        try:
            root = psutil.Process(child.process.pid)
            for process in [root, *root.children(recursive=True)]:
                times = process.cpu_times()
                total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
        seconds[child.name] = total
    return seconds


async def remember_round(signer: Signer, http: httpx.AsyncClient, count: int, round_index: int) -> tuple[float, float]:
    """Submit ``count`` memories and wait until all are done; return the seconds to accept all and to finish."""
    semaphore = asyncio.Semaphore(CLIENTS)

    async def one(index: int) -> str:
        text = f"round {round_index} memory {index}: {os.urandom(6).hex()}"
        async with semaphore:
            return (await signer.post(http, "/api/remember", {"text": text, "namespace": NAMESPACE})).json()["job_id"]

    started = time.perf_counter()
    pending = list(await asyncio.gather(*(one(index) for index in range(count))))
    accepted = time.perf_counter() - started
    await wait_until_done(signer, http, pending, poll_seconds=0.05)
    return accepted, time.perf_counter() - started


async def run(args: argparse.Namespace) -> dict:
    variants = [
        Variant("baseline (1 wallet, 1 in flight, full saves)", 1, 1, None, None, ("--snapshot-every-transaction",)),
        subject_variant(args.wallets, args.in_flight),
        Variant(f"batched (subject, up to {args.batch} jobs per transfer)", args.wallets, args.in_flight,
                args.wallets * args.in_flight * 2, args.wallets * args.in_flight * 2, batch=args.batch),
    ]
    root = Path(tempfile.mkdtemp(prefix="memwal-bench-remember-"))
    root.chmod(0o755)  # embedded PostgreSQL may run as another user
    samples: dict[str, list[dict]] = {variant.name: [] for variant in variants}
    try:
        async with AsyncExitStack() as exits:
            stacks = []
            for index, variant in enumerate(variants):
                data_dir = root / f"stack-{index}"
                data_dir.mkdir()
                stack = await exits.enter_async_context(DevStack(
                    data_dir, relayer_env=variant.relayer_env(),
                    localnet_args=("--server-wallets", str(variant.wallets), *variant.localnet_args)))
                stacks.append((variant, stack, Signer(stack)))
            limits = httpx.Limits(max_connections=CLIENTS * 2, max_keepalive_connections=CLIENTS * 2)
            http = await exits.enter_async_context(httpx.AsyncClient(timeout=120, limits=limits))
            for _variant, _stack, signer in stacks:  # warm-up: connections, gas coins, caches
                await remember_round(signer, http, min(args.memories, 8), -1)
            for round_index in range(args.rounds):
                for variant, stack, signer in stacks:
                    before = stack_cpu_seconds(stack)
                    accepted, seconds = await remember_round(signer, http, args.memories, round_index)
                    after = stack_cpu_seconds(stack)
                    cpu = {name: (after[name] - before.get(name, 0.0)) / seconds for name in after}
                    samples[variant.name].append({"seconds": seconds, "accepted_seconds": accepted,
                                                  "done_per_second": args.memories / seconds,
                                                  "cpu_ms_per_memory": 1000 * sum(cpu.values()) * seconds / args.memories,
                                                  "cores_busy": sum(cpu.values()), "cores_busy_by_process": cpu})
    finally:
        shutil.rmtree(root, ignore_errors=True)
    summary = {}
    for variant in variants:
        rounds = samples[variant.name]
        rates = [sample["done_per_second"] for sample in rounds]
        summary[variant.name] = {
            "wallets": variant.wallets, "in_flight_per_wallet": variant.in_flight,
            "done_per_second_median": statistics.median(rates), "done_per_second_min": min(rates),
            "done_per_second_max": max(rates),
            "cores_busy_median": statistics.median(sample["cores_busy"] for sample in rounds),
            "cpu_ms_per_memory_median": statistics.median(sample["cpu_ms_per_memory"] for sample in rounds),
            "localnet_cores_median": statistics.median(sample["cores_busy_by_process"].get("localnet", 0.0) for sample in rounds),
            "rounds": rounds,
        }
    return {"memories_per_round": args.memories, "rounds": args.rounds, "cpu_count": os.cpu_count(),
            "variants": summary}


def comparisons(report: dict) -> list[Comparison]:
    """Round i of one variant against round i of another (each round ran the variants back to back)."""
    names = list(report["variants"])
    baseline, subject, batched = names
    return [
        *_compared(report, subject, baseline, goal=">= 3x (#11)"),
        *_compared(report, batched, baseline, goal=">= 3x (#11)"),
        *_compared(report, batched, subject, goal="higher"),
    ]


def _compared(report: dict, subject: str, baseline: str, *, goal: str) -> list[Comparison]:
    pairs = list(zip(report["variants"][subject]["rounds"], report["variants"][baseline]["rounds"], strict=True))
    return [
        Comparison.of_rounds("remember_throughput", "remember done per second", subject=subject, baseline=baseline,
                             unit="done/s", subject_rounds=[s["done_per_second"] for s, _ in pairs],
                             baseline_rounds=[b["done_per_second"] for _, b in pairs], goal=goal),
        Comparison.of_rounds("remember_throughput", "stack CPU per memory", subject=subject, baseline=baseline,
                             unit="ms", subject_rounds=[s["cpu_ms_per_memory"] for s, _ in pairs],
                             baseline_rounds=[b["cpu_ms_per_memory"] for _, b in pairs], goal="lower"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench remember_throughput", description=__doc__.splitlines()[0])
    parser.add_argument("--memories", type=int, default=60, help="memories per round (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per variant, interleaved (default: %(default)s)")
    parser.add_argument("--wallets", type=int, default=4, help="server wallets of the subject (default: %(default)s)")
    parser.add_argument("--in-flight", type=int, default=4,
                        help="transactions in flight per wallet of the subject (default: %(default)s)")
    parser.add_argument("--batch", type=int, default=8,
                        help="jobs per transfer transaction of the batched variant (default: %(default)s)")
    args = parser.parse_args()
    report = asyncio.run(run(args))
    rows = [[name, value["done_per_second_median"], f"{value['done_per_second_min']:.1f}-{value['done_per_second_max']:.1f}",
             value["cores_busy_median"], value["localnet_cores_median"], value["cpu_ms_per_memory_median"]]
            for name, value in report["variants"].items()]
    print_table(f"remember throughput ({report['memories_per_round']} memories x {report['rounds']} rounds, "
                f"{report['cpu_count']} cores)", ["variant", "done/s", "spread", "cores busy", "localnet cores", "CPU ms/memory"], rows)
    compared = comparisons(report)
    print_table("remember: subject against baseline", COMPARISON_COLUMNS, [comparison.row() for comparison in compared])
    print(f"\nreport: {write_report('remember_throughput', report, compared)}")


if __name__ == "__main__":
    main()
