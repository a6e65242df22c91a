"""Scale-out: remember throughput with 1, 2 and 3 relayer instances sharing one PostgreSQL, one Redis Cluster
and the server key pool.

    python -m bench scale_out [--memories 36] [--rounds 2] [--wallets 6]

One DevStack (localnet with ``--wallets`` server wallets, embedded PostgreSQL, a 3-master Redis Cluster from
devtools/embedded_redis_cluster.py) and a RelayerFleet of three instances. Each round runs every variant back
to back (interleaved, so all see the same machine load): instances that are not part of a variant are stopped
(the job queue is shared, so a running instance would take jobs even without requests). Variants:
- baseline: 1 instance with every wallet;
- 2 and 3 instances sharing every wallet (the deployment docs/scale-out.md describes: any instance can resume
  any job), whose sidecars lease each gas coin fleet-wide in the cluster (sidecar/gas_leases.py);
- 2 and 3 instances each with a disjoint slice of the wallets (no shared gas coin, but a dead instance's
  half-done jobs can only be finished by an instance holding its wallets): no gas coin is contended at all.
Clients spread ``--memories`` signed ``POST /api/remember`` round-robin over the variant's instances (16 at a
time) and poll until every job is done or failed; done/s = jobs done / seconds, failed jobs counted apart.
Comparison rows: each variant against the baseline. Every instance runs on this machine: with 2 cores the
instances compete for the same CPUs (and with the localnet, which executes every transaction), so this
measures what the shared pieces allow, not what more machines would add. Writes build/bench/scale_out.json.
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
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.common import COMPARISON_COLUMNS, Comparison, print_table, write_report
from bench.relayer import Signer
from devtools.devstack import DevStack
from devtools.embedded_redis_cluster import redis_cluster
from devtools.relayer_fleet import RelayerFleet

NAMESPACE = "bench-scale-out"
CLIENTS = 16
KEYS = "SERVER_SUI_PRIVATE_KEYS"


@dataclass(frozen=True)
class Variant:
    instances: int
    disjoint_wallets: bool

    @property
    def name(self) -> str:
        if self.instances == 1:
            return "1 instance"
        return f"{self.instances} instances, {'disjoint wallets' if self.disjoint_wallets else 'shared wallets'}"

    def keys_of(self, index: int, keys: list[str]) -> str:
        return ",".join(keys[index :: self.instances] if self.disjoint_wallets else keys)


VARIANTS = (Variant(1, False), Variant(2, False), Variant(3, False), Variant(2, True), Variant(3, True))


@dataclass(frozen=True)
class RoundResult:
    seconds: float
    done: int
    failed: int  # jobs that used up JOB_MAX_ATTEMPTS (the shared wallets' gas coin conflicts)


async def remember_round(signer: Signer, http: httpx.AsyncClient, urls: list[str], count: int, label: str) -> RoundResult:
    """Submit ``count`` memories round-robin over ``urls`` and wait until each is done or failed."""
    semaphore = asyncio.Semaphore(CLIENTS)

    async def one(index: int) -> str:
        body = json.dumps({"text": f"{label} memory {index}: {os.urandom(6).hex()}", "namespace": NAMESPACE},
                          separators=(",", ":")).encode()
        async with semaphore:
            response = await http.post(urls[index % len(urls)] + "/api/remember", content=body,
                                       headers=signer.headers("POST", "/api/remember", body))
            response.raise_for_status()
            return str(response.json()["job_id"])

    started = time.perf_counter()
    pending = list(await asyncio.gather(*(one(index) for index in range(count))))
    finished: dict[str, str] = {}
    while len(finished) < count:
        for chunk in [pending[i : i + 20] for i in range(0, len(pending), 20)]:
            response = await signer.post(http, "/api/remember/bulk/status", {"job_ids": chunk})
            finished.update({entry["job_id"]: entry["status"] for entry in response.json()["results"]
                             if entry["status"] in ("done", "failed")})
        pending = [job for job in pending if job not in finished]
        if pending:
            await asyncio.sleep(0.05)
    failed = sum(status == "failed" for status in finished.values())
    return RoundResult(time.perf_counter() - started, count - failed, failed)


async def use_instances(fleet: RelayerFleet, variant: Variant, keys: list[str]) -> list[str]:
    """Run exactly the variant's instances, each with its wallets; their URLs."""
    for index, instance in enumerate(fleet.instances):
        wanted = variant.keys_of(index, keys) if index < variant.instances else None
        if instance.process.alive and instance.process.env[KEYS] != wanted:
            await instance.process.stop()
        if wanted is not None and not instance.process.alive:
            instance.process.env[KEYS] = wanted
            await fleet.start(instance)
    return fleet.urls[: variant.instances]


async def run(args: argparse.Namespace) -> dict:
    root = Path(tempfile.mkdtemp(prefix="memwal-bench-scale-out-"))
    root.chmod(0o755)  # embedded PostgreSQL may run as another user
    samples: dict[str, list[RoundResult]] = {variant.name: [] for variant in VARIANTS}
    env = {"REDIS_CLUSTER": "1", "RATE_LIMIT_DISABLED": "1", "LOG_FORMAT": "json",
           "SERVER_WALLET_MAX_IN_FLIGHT": str(args.in_flight)}
    try:
        async with AsyncExitStack() as exits:
            cluster = exits.enter_context(redis_cluster(root / "redis-cluster", masters=3))
            stack = await exits.enter_async_context(DevStack(
                root / "stack", redis_url=cluster.url, relayer_env=env,
                localnet_args=("--server-wallets", str(args.wallets))))
            fleet = await exits.enter_async_context(RelayerFleet(stack, instances=max(v.instances for v in VARIANTS)))
            keys = stack.relayer_environment()[KEYS].split(",")
            http = await exits.enter_async_context(httpx.AsyncClient(
                timeout=120, limits=httpx.Limits(max_connections=CLIENTS * 2, max_keepalive_connections=CLIENTS * 2)))
            signer = Signer(stack)
            await remember_round(signer, http, fleet.urls, min(args.memories, 12), "warm-up")  # gas coins, caches
            for round_index in range(args.rounds):
                for variant in VARIANTS:
                    urls = await use_instances(fleet, variant, keys)
                    samples[variant.name].append(
                        await remember_round(signer, http, urls, args.memories, f"round {round_index} {variant.name}"))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {
        "memories_per_round": args.memories, "rounds": args.rounds, "cpu_count": os.cpu_count(),
        "wallets": args.wallets, "in_flight_per_wallet": args.in_flight,
        "variants": {name: summarize(results) for name, results in samples.items()},
    }


def summarize(results: list[RoundResult]) -> dict:
    """done/s counts only jobs done (a failed job is work lost, not throughput)."""
    rates = [result.done / result.seconds for result in results]
    return {"done_per_second_median": statistics.median(rates), "done_per_second_min": min(rates),
            "done_per_second_max": max(rates), "failed_jobs": sum(result.failed for result in results), "rounds": rates}


def comparisons(report: dict) -> list[Comparison]:
    """Round i of each variant against round i of the single instance (they ran back to back)."""
    baseline = VARIANTS[0].name
    return [
        Comparison.of_rounds("scale_out", "remember done per second", subject=variant.name, baseline=baseline,
                             unit="done/s", subject_rounds=report["variants"][variant.name]["rounds"],
                             baseline_rounds=report["variants"][baseline]["rounds"], goal="grows with instances (#12)")
        for variant in VARIANTS[1:]
    ]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench scale_out", description=__doc__.splitlines()[0])
    parser.add_argument("--memories", type=int, default=36, help="memories per round and variant (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds, each running every variant (default: %(default)s)")
    parser.add_argument("--wallets", type=int, default=6, help="server wallets of the deployment (default: %(default)s)")
    parser.add_argument("--in-flight", type=int, default=4, help="transactions in flight per wallet (default: %(default)s)")
    args = parser.parse_args()
    report = asyncio.run(run(args))
    rows = [[name, value["done_per_second_median"],
             f"{value['done_per_second_min']:.1f}-{value['done_per_second_max']:.1f}", value["failed_jobs"]]
            for name, value in report["variants"].items()]
    print_table(f"scale-out remember throughput ({report['memories_per_round']} memories x {report['rounds']} rounds, "
                f"{report['cpu_count']} cores, one machine)", ["variant", "done/s", "spread", "failed jobs"], rows)
    compared = comparisons(report)
    print_table("scale-out: N instances against 1", COMPARISON_COLUMNS, [comparison.row() for comparison in compared])
    print(f"\nreport: {write_report('scale_out', report, compared)}")


if __name__ == "__main__":
    main()
