"""Remember, stage by stage: where one memory's wall time goes, and which process spends the CPU.

    python -m bench remember_stages [--memories 60] [--rounds 3] [--wallets 4] [--in-flight 4] [--clients 16]

One DevStack in remember_throughput's subject configuration (``--wallets`` server wallets, ``--in-flight``
transactions each, job and upload concurrency to match, each transfer alone) with ``STAGE_TIMING_LOGS=1``:
the relayer and its sidecar log each stage's wall time per job or request (memwal_common.stage_timing).
Each round submits ``--memories`` signed ``POST /api/remember`` from ``--clients`` concurrent clients and
waits until all are done. Then the logs are read back and every stage summarised (p50, p90, and its share
of a memory's wall time = the client's POST latency + the job's queue wait + the job's run).

Nested stages are indented: ``job.upload`` is the relayer's call of the sidecar (quota check included), the
``upload.*`` rows are the sidecar's parts of it; "(rest)" rows are the parent minus its timed parts.
CPU is user+system seconds per process over the measured rounds, in cores busy: localnet, relayer,
sidecar (with its Seal workers), indexer, PostgreSQL (all its backends), Redis and the bench client; and the
whole machine's, so what other work took is visible too (a CPU-bound stack shows the machine near its core count). With ``--py-spy PATH`` (a py-spy binary; not a
dependency of the project) the relayer, sidecar and localnet are sampled over the measured rounds too:
collapsed stacks go to build/bench/remember_stages.<process>.stacks and the busiest functions (own
samples, and samples under them) are printed. Writes build/bench/remember_stages.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.common import percentile, print_table, write_report
from bench.process_profile import (
    MACHINE,
    SAMPLING_RATE_HZ,
    cpu_seconds,
    stack_processes,
    start_sampling,
    stop_sampling,
)
from bench.relayer import Signer, wait_until_done
from bench.remember_throughput import NAMESPACE, subject_variant
from devtools.devstack import DevStack
from memwal_common.stage_timing import LOGGER_NAME, StageSample, parse_stage_line

SAMPLED_PROCESSES = ("relayer", "sidecar", "localnet")
# (stage, depth): the rows of the profile, parents before their parts.
REQUEST_STAGES = ("request.auth", "request.handler")
HANDLER_STAGES = ("request.summarize", "request.encrypt", "request.embed", "request.embed_rest", "job.enqueue")
UPLOAD_STAGES = ("upload.slot_wait", "upload.journal_read", "upload.publish", "upload.journal_write",
                 "upload.object_visible", "upload.gas_prepare", "upload.gas_wait", "upload.batched_transfer",
                 "upload.transfer", "upload.transaction_indexed")
JOB_STAGES = ("job.forgotten_check", "job.upload", "job.mark_uploaded", "job.index", "job.mark_done")
# request.embed runs while request.encrypt does: only what it takes beyond it (embed_rest) adds up.
NOT_ADDITIVE = {"request.embed"}


@dataclass(frozen=True)
class Submitted:
    job_id: str
    request_id: str
    seconds: float  # the client's POST latency


async def remember_round(signer: Signer, http: httpx.AsyncClient, count: int, clients: int,
                         label: str) -> tuple[list[Submitted], float]:
    """Submit ``count`` memories from ``clients`` concurrent clients, wait until all are done; (submissions, seconds)."""
    semaphore = asyncio.Semaphore(clients)

    async def one(index: int) -> Submitted:
        text = f"{label} memory {index}: {os.urandom(6).hex()}"
        async with semaphore:
            started = time.perf_counter()
            response = await signer.post(http, "/api/remember", {"text": text, "namespace": NAMESPACE})
            return Submitted(response.json()["job_id"], response.headers.get("x-request-id", ""),
                             time.perf_counter() - started)

    started = time.perf_counter()
    submitted = list(await asyncio.gather(*(one(index) for index in range(count))))
    await wait_until_done(signer, http, [item.job_id for item in submitted], poll_seconds=0.05)
    return submitted, time.perf_counter() - started


def read_stage_samples(log_path: Path) -> list[StageSample]:
    """The ``memwal.stages`` lines of a JSON log (relayer and sidecar write to the same file)."""
    samples = []
    for line in log_path.read_text(errors="replace").splitlines():
        if LOGGER_NAME not in line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("logger") == LOGGER_NAME and (sample := parse_stage_line(entry.get("message", ""))) is not None:
            samples.append(sample)
    return samples


def profile(submitted: list[Submitted], samples: Iterable[StageSample]) -> dict:
    """Per-memory stage seconds (stages seen twice for one key, e.g. the journal writes, add up) and the summary."""
    keys = {item.job_id for item in submitted} | {item.request_id for item in submitted}
    by_key: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for sample in samples:
        if sample.key in keys:
            by_key[sample.key][sample.stage] += sample.seconds
    memories = []
    for item in submitted:
        stages = {"request": item.seconds, **by_key.get(item.request_id, {}), **by_key.get(item.job_id, {})}
        if "job.queued" not in stages or "job.total" not in stages:
            continue  # a retried job: its first attempt is not in the profile
        stages["request.(rest)"] = item.seconds - sum(stages.get(name, 0.0) for name in REQUEST_STAGES)
        stages["handler.(rest)"] = stages.get("request.handler", 0.0) - sum(
            stages.get(name, 0.0) for name in HANDLER_STAGES if name not in NOT_ADDITIVE)
        stages["upload.(rest)"] = stages.get("job.upload", 0.0) - sum(stages.get(name, 0.0) for name in UPLOAD_STAGES)
        stages["job.(rest)"] = stages["job.total"] - sum(stages.get(name, 0.0) for name in JOB_STAGES)
        stages["memory"] = item.seconds + stages["job.queued"] + stages["job.total"]
        memories.append(stages)
    rows = []
    wall = sum(memory["memory"] for memory in memories)
    for name, depth in _ROWS:
        values = [memory[name] for memory in memories if name in memory]
        if not values:
            continue
        rows.append({"stage": name, "depth": depth, "count": len(values),
                     "p50_ms": 1000 * percentile(values, 0.5), "p90_ms": 1000 * percentile(values, 0.9),
                     "mean_ms": 1000 * statistics.fmean(values),
                     "share_of_memory_wall": sum(values) / wall if wall else float("nan")})
    return {"memories_profiled": len(memories), "stages": rows}


_ROWS: tuple[tuple[str, int], ...] = (
    ("memory", 0),
    ("request", 1), ("request.auth", 2), ("request.handler", 2), *((name, 3) for name in HANDLER_STAGES),
    ("handler.(rest)", 3), ("request.(rest)", 2),
    ("job.queued", 1),
    ("job.total", 1), ("job.forgotten_check", 2), ("job.upload", 2), *((name, 3) for name in UPLOAD_STAGES),
    ("upload.(rest)", 3), ("job.mark_uploaded", 2), ("job.index", 2), ("job.mark_done", 2), ("job.(rest)", 2),
)


async def run(args: argparse.Namespace) -> dict:
    variant = subject_variant(args.wallets, args.in_flight)
    env = {**variant.relayer_env(), "STAGE_TIMING_LOGS": "1", **dict(setting.split("=", 1) for setting in args.env)}
    root = Path(tempfile.mkdtemp(prefix="memwal-bench-stages-"))
    root.chmod(0o755)  # embedded PostgreSQL may run as another user
    rounds = []
    submitted: list[Submitted] = []
    try:
        async with AsyncExitStack() as exits:
            stack = await exits.enter_async_context(DevStack(
                root / "stack", relayer_env=env, localnet_args=("--server-wallets", str(variant.wallets))))
            signer = Signer(stack)
            limits = httpx.Limits(max_connections=args.clients * 2, max_keepalive_connections=args.clients * 2)
            http = await exits.enter_async_context(httpx.AsyncClient(timeout=120, limits=limits))
            await remember_round(signer, http, min(args.memories, 8), args.clients, "warm-up")
            roles = stack_processes(stack)
            samplers = (await start_sampling(args.py_spy, roles, sampled=SAMPLED_PROCESSES, report="remember_stages")
                        if args.py_spy else {})
            before = cpu_seconds(roles)
            measured_seconds = 0.0
            for round_index in range(args.rounds):
                batch, seconds = await remember_round(signer, http, args.memories, args.clients, f"round {round_index}")
                submitted += batch
                measured_seconds += seconds
                rounds.append({"seconds": seconds, "done_per_second": args.memories / seconds})
            after = cpu_seconds(roles)
            sampled = await stop_sampling(samplers)
            await asyncio.sleep(0.5)  # the last log lines reach the file
            assert stack.relayer is not None and stack.relayer.log_path is not None
            samples = read_stage_samples(stack.relayer.log_path)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    cores = {role: (after[role] - before.get(role, 0.0)) / measured_seconds for role in after}
    machine = cores.pop(MACHINE)
    stack_cores = sum(value for role, value in cores.items() if role != "bench client")
    return {"variant": variant.name, "extra_env": args.env, "memories_per_round": args.memories, "rounds": rounds, "clients": args.clients,
            "cpu_count": os.cpu_count(), "done_per_second_median": statistics.median(r["done_per_second"] for r in rounds),
            "cores_busy_by_process": cores, "cores_busy": stack_cores, "machine_cores_busy": machine,
            "other_cores_busy": machine - sum(cores.values()),
            "cpu_ms_per_memory_by_process": {role: 1000 * value * measured_seconds / len(submitted)
                                             for role, value in cores.items()},
            "sampled": sampled,
            **profile(submitted, samples)}


def _indented(row: dict, rows: list[dict]) -> str:
    """The stage name indented by its depth, padded so the right-aligned table keeps the indent."""
    width = max(2 * other["depth"] + len(other["stage"]) for other in rows)
    return ("  " * row["depth"] + row["stage"]).ljust(width)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench remember_stages", description=__doc__.splitlines()[0])
    parser.add_argument("--memories", type=int, default=60, help="memories per round (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds (default: %(default)s)")
    parser.add_argument("--wallets", type=int, default=4, help="server wallets (default: %(default)s)")
    parser.add_argument("--in-flight", type=int, default=4, help="transactions in flight per wallet (default: %(default)s)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent submitting clients (default: %(default)s)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="one more relayer/sidecar setting, to profile a change (repeatable)")
    parser.add_argument("--py-spy", metavar="PATH", help="sample the relayer, sidecar and localnet with this py-spy binary")
    args = parser.parse_args()
    report = asyncio.run(run(args))
    print_table(f"remember stages: {report['variant']}, {report['memories_profiled']} memories, "
                f"{report['done_per_second_median']:.1f} done/s (median of {len(report['rounds'])} rounds)",
                ["stage", "n", "p50 ms", "p90 ms", "mean ms", "share of memory wall"],
                [[_indented(row, report["stages"]), row["count"], row["p50_ms"], row["p90_ms"], row["mean_ms"],
                  f"{100 * row['share_of_memory_wall']:.1f}%"] for row in report["stages"]])
    print_table(f"CPU over the measured rounds ({report['cpu_count']} cores)", ["process", "cores busy", "CPU ms/memory"],
                [*([role, cores, report["cpu_ms_per_memory_by_process"][role]]
                   for role, cores in sorted(report["cores_busy_by_process"].items())),
                 ["stack (without the bench client)", report["cores_busy"], ""],
                 ["other work on the machine", report["other_cores_busy"], ""],
                 ["machine", report["machine_cores_busy"], ""]])
    for role, summary in report["sampled"].items():
        print_table(f"{role}: busiest functions ({summary['busy_samples']} busy samples at {SAMPLING_RATE_HZ} Hz)",
                    ["own samples", "share", "samples under it", "share"],
                    [[own[0][:90], f"{100 * own[1]:.1f}%", under[0][:90], f"{100 * under[1]:.1f}%"]
                     for own, under in zip(summary["own"], summary["under"])])
    print(f"\nreport: {write_report('remember_stages', report)}")


if __name__ == "__main__":
    main()
