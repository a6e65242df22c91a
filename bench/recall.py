"""Recall latency with the sidecar's key cache and decryption pool vs without, and against the floor.

    python -m bench recall [--memories 30] [--recalls 40] [--limit 10]

One DevStack, two relayers on it (same database, Redis, localnet and memories), each with its own sidecar:
the subject with the defaults (``SEAL_KEY_CACHE_ENTRIES``, ``SEAL_DECRYPT_WORKERS`` = CPU count) and the
baseline with both off (a key fetch and serial decryption on every recall, as before issue #11). Signed
``POST /api/recall`` (k hits, one Seal session per client as the SDK keeps it) goes to both, interleaved.
In the same loop the floor's parts are timed directly: the relayer's vector search (``VectorStore.search``),
cached blob reads (``WalrusClient.read_many`` with the stack's Redis warm) and serial decryption of the k
objects with keys in hand. Floor = search + cached reads + serial decrypt / cores; goal: subject p50 ≤ 1.3×
floor. Each sidecar's ``/blobs/open`` is also called directly (floor: cached reads + decrypt / cores), which
leaves out what the relayer adds to every signed request. Rate limits are disabled. Then one client's recalls on the subject, one after another, give CPU milliseconds
per recall by process and each process's busy cores (did decryption use both?); ``--py-spy PATH`` adds the
sidecar's busiest functions. Writes build/bench/recall.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from bench.common import COMPARISON_COLUMNS, Comparison, LatencySummary, print_table, time_async, write_report
from bench.process_profile import SAMPLING_RATE_HZ, cpu_seconds, stack_processes, start_sampling, stop_sampling
from bench.relayer import NAMESPACE, QUERY, Signer, remember_all
from chain import bcs
from chain.jsonrpc import JsonRpcChainReader
from devtools.devstack import DevStack
from devtools.processes import ChildProcess, free_port
from memwal_common.redis_client import fail_fast_redis
from memwal_common.secret import Secret
from relayer.database.pool import connect
from relayer.database.vectors import VectorStore
from relayer.sidecar_client import SidecarClient, SidecarLimits
from sealcrypto import EncryptedObject, KeyServerClient, KeyServerEndpoint, build_seal_approve_ptb, decrypt
from sidecar.walrus import WalrusClient

BASELINE_ENV = {"SEAL_KEY_CACHE_ENTRIES": "0", "SEAL_DECRYPT_WORKERS": "0"}
SIDECAR_TOKEN = "bench-" + "s" * 32  # both sidecars, so the bench can also call /blobs/open on each directly
SIDECAR_LIMITS = SidecarLimits(request_timeout_seconds=60, connect_timeout_seconds=5, health_timeout_seconds=2,
                               max_reply_bytes=64 * 1024 * 1024)
GOAL = 1.3


async def start_baseline_relayer(stack: DevStack, http: httpx.AsyncClient) -> tuple[ChildProcess, str]:
    """A second relayer (and sidecar) on the stack's database, Redis and localnet, with the cache and pool off."""
    port = free_port()
    env = {**stack.relayer_environment(), **BASELINE_ENV, "BIND": f"127.0.0.1:{port}",
           "MEMWAL_DATA_DIR": str(stack.data_dir / "relayer-baseline")}
    relayer = ChildProcess("relayer-baseline", ["-m", "relayer"], env, stack.data_dir / "logs" / "relayer-baseline.log")
    await relayer.start()
    url = f"http://127.0.0.1:{port}"

    async def healthy() -> bool:
        try:
            return (await http.get(f"{url}/health", timeout=2.0)).status_code == 200
        except httpx.HTTPError:
            return False

    await relayer.wait_until(healthy, "the baseline relayer did not become healthy")
    return relayer, url


async def cpu_per_recall(stack: DevStack, recall: Callable[[], Awaitable[int]], iterations: int,
                         py_spy: str | None) -> dict:
    """One client's recalls on the subject, one after another: CPU milliseconds per recall by process (relayer,
    sidecar with its decryption workers, PostgreSQL, Redis, localnet, this client) and the machine's busy cores,
    which tell whether decryption ran on both cores; with ``py_spy`` the sidecar's busiest functions."""
    roles = stack_processes(stack)
    samplers = await start_sampling(py_spy, roles, sampled=("sidecar",), report="recall") if py_spy else {}
    before, started = cpu_seconds(roles), time.perf_counter()
    for _ in range(iterations):
        await recall()
    after, wall = cpu_seconds(roles), time.perf_counter() - started
    sampled = await stop_sampling(samplers)
    return {"wall_ms_per_recall": round(wall / iterations * 1000, 2),
            "cpu_ms_per_recall": {role: round((after[role] - before[role]) / iterations * 1000, 2) for role in after},
            "cores_busy": {role: round((after[role] - before[role]) / wall, 2) for role in after},
            "sidecar_busiest": sampled.get("sidecar")}


async def measure(signer: Signer, http: httpx.AsyncClient, stack: DevStack, baseline_url: str,
                  iterations: int, limit: int, py_spy: str | None = None) -> tuple[dict, list[Comparison]]:
    info = stack.info
    vector = (await signer.post(http, "/api/embed", {"text": QUERY})).json()["vector"]
    if stack.database_url is None or stack.redis_url is None:
        raise RuntimeError("the dev stack has no database or Redis")
    database = await connect(stack.database_url, min_size=1, max_size=2, command_timeout=60, migrate=False)
    redis = fail_fast_redis(stack.redis_url, timeout_seconds=2)
    chain = JsonRpcChainReader(info["sui_rpc_url"], http=http)
    vectors = VectorStore(database)
    owner = stack.account.owner_address
    # The sidecar's own reader, on the Redis cache the relayers' sidecars fill (same key format, same limits).
    walrus = WalrusClient(http=http, publisher_url=info["walrus_publisher_url"], aggregator_urls=info["walrus_aggregator_urls"],
                          race_after_ms=150, timeout_seconds=15, max_blob_bytes=2 * 1024 * 1024, cache=redis,
                          cache_ttl_seconds=1_209_600, cache_max_bytes=524_288)
    try:
        hits = await vectors.search(owner, NAMESPACE, vector, limit)
        blob_ids = [hit.blob_id for hit in hits]
        objects = [EncryptedObject.from_bytes(fetch.data or b"") for fetch in (await walrus.read_many(blob_ids)).values()]
        endpoints = []
        for server in info["seal_key_servers"]:
            key_server = await chain.key_server(server["objectId"])
            endpoints.append(KeyServerEndpoint(key_server.object_id, key_server.url or "", key_server.public_key))
        account = await chain.get_account(signer.account_id)
        if account is None:
            raise RuntimeError("the bench account is not on the localnet")
        ptb = build_seal_approve_ptb(info["memwal_package_id"], [(bcs.address(owner), account.account_id, account.initial_shared_version)])
        keys = await KeyServerClient(endpoints, info["seal_threshold"], http).fetch_keys(
            ptb, signer.session_key, list({obj.full_id for obj in objects}))

        async def recall(url: str) -> int:
            path = "/api/recall"
            raw = json.dumps({"query": QUERY, "namespace": NAMESPACE, "limit": limit}, separators=(",", ":")).encode()
            response = await http.post(url + path, content=raw, headers=signer.headers("POST", path, raw, session=True))
            response.raise_for_status()
            return len(response.json()["results"])

        sidecars = {name: SidecarClient.over_unix_socket(str(Path(data_dir) / "sidecar.sock"), Secret(SIDECAR_TOKEN), SIDECAR_LIMITS)
                    for name, data_dir in (("subject", stack.relayer_environment()["MEMWAL_DATA_DIR"]),
                                           ("baseline", str(stack.data_dir / "relayer-baseline")))}

        async def open_blobs(name: str) -> int:
            opened = await sidecars[name].open_blobs(blob_ids, package_id=info["memwal_package_id"],
                                                     account_id=signer.account_id, session=signer.session)
            return sum(blob.plaintext is not None for blob in opened.values())

        async def search() -> int:
            return len(await vectors.search(owner, NAMESPACE, vector, limit))

        async def cached_reads() -> int:
            return sum(fetch.data is not None for fetch in (await walrus.read_many(blob_ids)).values())

        async def serial_decrypt() -> int:
            return len([decrypt(obj, {oid: per_id[obj.full_id] for oid, per_id in keys.items()}) for obj in objects])

        assert await recall(stack.relayer_url) == await recall(baseline_url) == len(hits), "the relayers disagree"
        assert await open_blobs("subject") == await open_blobs("baseline") == len(hits), "the sidecars disagree"
        samples: dict[str, list[float]] = {name: [] for name in (
            "subject", "baseline", "open_subject", "open_baseline", "search", "cached_reads", "decrypt")}
        for _ in range(iterations):  # interleaved, so all see the same machine load
            samples["subject"].append((await time_async(lambda: recall(stack.relayer_url)))[0])
            samples["baseline"].append((await time_async(lambda: recall(baseline_url)))[0])
            samples["open_subject"].append((await time_async(lambda: open_blobs("subject")))[0])
            samples["open_baseline"].append((await time_async(lambda: open_blobs("baseline")))[0])
            samples["search"].append((await time_async(search))[0])
            samples["cached_reads"].append((await time_async(cached_reads))[0])
            samples["decrypt"].append((await time_async(serial_decrypt))[0])
        cpu = await cpu_per_recall(stack, lambda: recall(stack.relayer_url), iterations, py_spy)
        for client in sidecars.values():
            await client.close()
    finally:
        await redis.aclose()
        await database.close()
    summaries = {name: LatencySummary.of(values).__dict__ for name, values in samples.items()}
    cores = os.cpu_count() or 1
    open_floor = summaries["cached_reads"]["p50_ms"] + summaries["decrypt"]["p50_ms"] / cores
    # What the floor is when the other processes of the machine leave the bench one core (say so in reports).
    one_core_floor = summaries["search"]["p50_ms"] + summaries["cached_reads"]["p50_ms"] + summaries["decrypt"]["p50_ms"]
    floor = summaries["search"]["p50_ms"] + open_floor
    subject, baseline = summaries["subject"]["p50_ms"], summaries["baseline"]["p50_ms"]
    open_subject, open_baseline = summaries["open_subject"]["p50_ms"], summaries["open_baseline"]["p50_ms"]
    floor_rounds = [search + reads + decrypted / cores for search, reads, decrypted
                    in zip(samples["search"], samples["cached_reads"], samples["decrypt"], strict=True)]
    metric = f"recall k={limit} latency"
    comparisons = [
        Comparison.of_rounds("recall", metric, subject="cache + pool", baseline="neither (as before #11)", unit="ms",
                             subject_rounds=samples["subject"], baseline_rounds=samples["baseline"]),
        Comparison.of_rounds("recall", metric, subject="cache + pool", baseline="floor: search + reads + decrypt/cores",
                             unit="ms", subject_rounds=samples["subject"], baseline_rounds=floor_rounds, goal=f"<= {GOAL}"),
        Comparison.of_rounds("recall", "sidecar /blobs/open", subject="cache + pool", baseline="neither", unit="ms",
                             subject_rounds=samples["open_subject"], baseline_rounds=samples["open_baseline"]),
    ]
    return {"limit": limit, "hits": len(hits), "cores": cores, "latency": summaries, "floor_p50_ms": floor,
            "subject_over_floor": subject / floor, "baseline_over_floor": baseline / floor,
            "subject_over_baseline": subject / baseline, "open_floor_p50_ms": open_floor,
            "open_subject_over_floor": open_subject / open_floor, "open_baseline_over_floor": open_baseline / open_floor,
            "open_subject_over_baseline": open_subject / open_baseline, "goal_over_floor": GOAL,
            "one_core_floor_p50_ms": one_core_floor, "subject_over_one_core_floor": subject / one_core_floor,
            "load_average": os.getloadavg(), "cpu_per_recall": cpu}, comparisons


async def run(args: argparse.Namespace) -> tuple[dict, list[Comparison]]:
    data_dir = Path(tempfile.mkdtemp(prefix="memwal-bench-recall-"))
    data_dir.chmod(0o755)  # embedded PostgreSQL may run as another user
    try:
        async with DevStack(data_dir, database_url=os.environ.get("DATABASE_URL") or None,
                            redis_url=os.environ.get("REDIS_URL") or None,
                            relayer_env={"RATE_LIMIT_DISABLED": "1", "LOG_FORMAT": "json",
                                         "SIDECAR_AUTH_TOKEN": SIDECAR_TOKEN}) as stack:
            signer = Signer(stack)
            async with httpx.AsyncClient(timeout=60) as http:
                remember = await remember_all(signer, http, args.memories)
                baseline, baseline_url = await start_baseline_relayer(stack, http)
                try:
                    recall, comparisons = await measure(signer, http, stack, baseline_url, args.recalls, args.limit,
                                                        args.py_spy)
                finally:
                    await baseline.stop()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    return {"memories": remember["memories"], **recall}, comparisons


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench recall", description=__doc__.splitlines()[0])
    parser.add_argument("--memories", type=int, default=30)
    parser.add_argument("--recalls", type=int, default=40)
    parser.add_argument("--limit", type=int, default=10)
    parser.add_argument("--py-spy", metavar="PATH", help="also sample the subject's sidecar with this py-spy binary "
                        "(not a project dependency) while CPU per recall is measured")
    args = parser.parse_args()
    started = time.perf_counter()
    report, comparisons = asyncio.run(run(args))
    report["wall_seconds"] = time.perf_counter() - started
    latency = report["latency"]
    rows = [[name, latency[key]["p50_ms"], latency[key]["p99_ms"], latency[key]["mean_ms"]] for name, key in (
        ("relayer /api/recall, cache + pool (subject)", "subject"),
        ("relayer /api/recall, neither (baseline)", "baseline"),
        ("sidecar /blobs/open, cache + pool", "open_subject"),
        ("sidecar /blobs/open, neither", "open_baseline"),
        ("floor: vector search", "search"),
        ("floor: cached blob reads", "cached_reads"),
        (f"floor: serial decrypt of {report['hits']} (÷ {report['cores']} cores)", "decrypt"),
    )]
    print_table(f"recall k={report['limit']} latency (ms, {latency['subject']['count']} runs each, interleaved)",
                ["path", "p50", "p99", "mean"], rows)
    print_table("ratios (p50)", ["call", "subject/floor", "baseline/floor", "subject/baseline", "floor ms", "goal"], [
        ["relayer /api/recall", report["subject_over_floor"], report["baseline_over_floor"], report["subject_over_baseline"],
         report["floor_p50_ms"], f"<= {GOAL}"],
        ["sidecar /blobs/open", report["open_subject_over_floor"], report["open_baseline_over_floor"],
         report["open_subject_over_baseline"], report["open_floor_p50_ms"], ""],
    ])
    print(f"\none-core floor {report['one_core_floor_p50_ms']:.1f} ms (subject/that {report['subject_over_one_core_floor']:.2f}); "
          f"load average at the end {', '.join(f'{value:.2f}' for value in report['load_average'])}")
    cpu = report["cpu_per_recall"]
    print_table(f"one client's recalls on the subject, one after another ({cpu['wall_ms_per_recall']} ms each)",
                ["process", "CPU ms per recall", "cores busy"],
                [[role, cpu["cpu_ms_per_recall"][role], cpu["cores_busy"][role]] for role in cpu["cpu_ms_per_recall"]])
    busiest = cpu["sidecar_busiest"]
    if busiest:
        print_table(f"sidecar: functions with the most samples under them ({busiest['busy_samples']} busy samples at "
                    f"{SAMPLING_RATE_HZ} Hz)", ["function", "share"], [(frame, f"{share:.1%}") for frame, share in busiest["under"]])
    print_table("comparisons (median per-round ratio)", COMPARISON_COLUMNS, [comparison.row() for comparison in comparisons])
    print(f"\nreport: {write_report('recall', report, comparisons)}")


if __name__ == "__main__":
    main()
