"""Appliance latency: one client's sequential keep-alive request, plain vs through the appliance, in one run.

    python -m bench appliance_latency [--requests 300] [--rounds 12] [--path /version] [--isolate]

Three paths to the same relayer route, each an httpx client holding one kept-alive connection:

  plain           `make run-plain`'s relayer over plain HTTP on loopback TCP (devtools/devstack.py)
  enclave_socket  TLS straight to the enclave runtime's ingress socket (Unix), skipping the host proxy
  appliance       TLS through the host proxy's TCP ingress to that socket: what every client of `make run` takes

Both stacks are the real processes (devtools/appliance.py with the simulated attester, provisioned by the
operator step; its own PostgreSQL, Redis and localnet next to the plain stack's). ``--isolate`` runs the
enclave in a network namespace as `make run` does as root; the ingress chain is the same either way.

Rounds interleave the three paths, so a noisy neighbour on a shared machine hurts all of them alike. Each
round's p50 gives one difference (appliance − plain) and one ratio; the report states the median of each with
its p10–p90 spread (``Comparison`` rows for `make bench`'s summary).
Goal (issue #11): appliance ≤ plain + 3 ms. Results: table on stdout, build/bench/appliance_latency.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from attestation.remote import pinned_ssl_context
from bench.common import Comparison, LatencySummary, percentile, print_table, write_report
from devtools.appliance import Appliance
from devtools.devstack import DevStack

REPOSITORY = Path(__file__).resolve().parent.parent
WARMUP_REQUESTS = 20  # per client, before the first round: connection set up, TLS handshake, caches
GOAL_ADDED_MS = 3.0
REQUEST_TIMEOUT_SECONDS = 10.0
# The demo stack's limits would throttle thousands of requests a minute from one client.
UNLIMITED = {
    "RATE_LIMIT_DELEGATE_KEY_PER_MINUTE": "1000000",
    "RATE_LIMIT_REQUESTS_PER_MINUTE": "1000000",
    "RATE_LIMIT_REQUESTS_PER_HOUR": "100000000",
}
PATHS = ("plain", "enclave_socket", "appliance")

Request = Callable[[], Awaitable[httpx.Response]]


async def sequential_samples(request: Request, count: int) -> list[float]:
    """``count`` requests one after another; each answer must be a 200. Milliseconds per request."""
    samples: list[float] = []
    for _ in range(count):
        started = time.perf_counter_ns()
        response = await request()
        samples.append((time.perf_counter_ns() - started) / 1e6)
        if response.status_code != 200:
            raise RuntimeError(f"{response.request.url} answered {response.status_code}: {response.text[:200]}")
    return samples


def getter(client: httpx.AsyncClient, path: str) -> Request:
    def request() -> Awaitable[httpx.Response]:
        return client.get(path)

    return request


def difference_spread(round_p50s: dict[str, list[float]], subject: str, baseline: str) -> dict[str, float]:
    """Per-round p50 differences (subject − baseline): their median and p10–p90, in milliseconds."""
    differences = [s - b for s, b in zip(round_p50s[subject], round_p50s[baseline], strict=True)]
    return {
        "median_ms": percentile(differences, 0.5),
        "p10_ms": percentile(differences, 0.1),
        "p90_ms": percentile(differences, 0.9),
    }


def comparisons(round_p50s: dict[str, list[float]], path: str) -> list[Comparison]:
    """The appliance against the plain relayer (the goal) and against the enclave socket (the host proxy's share)."""
    return [
        Comparison.of_rounds(
            "appliance_latency", f"sequential keep-alive GET {path}, p50", subject="appliance", baseline=baseline,
            unit="ms", subject_rounds=round_p50s["appliance"], baseline_rounds=round_p50s[baseline], goal=goal,
        )
        for baseline, goal in (("plain", f"<= plain + {GOAL_ADDED_MS:g} ms"), ("enclave_socket", ""))
    ]  # fmt: skip


async def measure(arguments: argparse.Namespace, workdir: Path) -> dict:
    quiet: Callable[[str], None] = lambda line: None  # noqa: E731
    started = time.monotonic()
    appliance = Appliance(
        workdir / "appliance", port=0, isolate=arguments.isolate, provision=False, progress=quiet,
        embeddings="openai", egress_policy="open", relayer_env=UNLIMITED,
    )  # fmt: skip
    async with DevStack(workdir / "plain", relayer_env=UNLIMITED) as plain, appliance:
        await appliance.provision()
        print(f"  stacks up in {time.monotonic() - started:.0f} s", flush=True)
        async with appliance.attested_session() as session:
            tls = pinned_ssl_context(session.enclave.certificate_der)
        timeout = httpx.Timeout(REQUEST_TIMEOUT_SECONDS)
        clients = {
            "plain": httpx.AsyncClient(base_url=plain.relayer_url, timeout=timeout),
            "enclave_socket": httpx.AsyncClient(
                base_url="https://localhost", timeout=timeout,
                transport=httpx.AsyncHTTPTransport(uds=str(appliance.layout.enclave_ingress), verify=tls),
            ),
            "appliance": httpx.AsyncClient(
                base_url=appliance.url, timeout=timeout, transport=httpx.AsyncHTTPTransport(verify=tls)
            ),
        }  # fmt: skip
        try:
            requests = {name: getter(client, arguments.path) for name, client in clients.items()}
            for name in PATHS:
                await sequential_samples(requests[name], WARMUP_REQUESTS)
            samples: dict[str, list[float]] = {name: [] for name in PATHS}
            round_p50s: dict[str, list[float]] = {name: [] for name in PATHS}
            for _ in range(arguments.rounds):
                for name in PATHS:
                    batch = await sequential_samples(requests[name], arguments.requests)
                    samples[name] += batch
                    round_p50s[name].append(statistics.median(batch))
        finally:
            for client in clients.values():
                await client.aclose()
    return {"samples": samples, "round_p50s": round_p50s}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench appliance_latency", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--requests", type=int, default=300, help="sequential requests per path per round [300]")
    parser.add_argument("--rounds", type=int, default=12, help="interleaved rounds [12]")
    parser.add_argument("--path", default="/version", help="the GET route every path requests [/version]")
    parser.add_argument("--isolate", action="store_true", help="run the enclave in a network namespace (root), as `make run`")
    arguments = parser.parse_args(sys.argv[1:])
    if arguments.requests < 1 or arguments.rounds < 1:
        parser.error("--requests and --rounds must be at least 1")
    workdir = Path(tempfile.mkdtemp(prefix="applat-"))  # short: Unix socket paths are capped at 107 bytes
    try:
        measured = asyncio.run(measure(arguments, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    summaries = {name: LatencySummary.of(measured["samples"][name]) for name in PATHS}
    rows = [[name, summary.count, summary.p50_ms, summary.p99_ms, summary.mean_ms] for name, summary in summaries.items()]
    print_table(
        f"one client, sequential keep-alive GET {arguments.path}", ["path", "requests", "p50 ms", "p99 ms", "mean ms"], rows
    )
    added = difference_spread(measured["round_p50s"], "appliance", "plain")
    proxy = difference_spread(measured["round_p50s"], "appliance", "enclave_socket")
    summary = {
        "appliance_minus_plain_p50_ms": added,
        "host_proxy_share_p50_ms": proxy,
        "appliance_minus_plain_p99_ms": summaries["appliance"].p99_ms - summaries["plain"].p99_ms,
        f"goal_added_le_{GOAL_ADDED_MS:g}ms": added["median_ms"] <= GOAL_ADDED_MS,
    }
    for label, spread in (("appliance − plain", added), ("appliance − enclave socket (the host proxy)", proxy)):
        print(
            f"  {label}: p50 {spread['median_ms']:+.2f} ms (p10–p90 over rounds {spread['p10_ms']:+.2f} … {spread['p90_ms']:+.2f})"
        )
    print(f"  appliance − plain p99: {summary['appliance_minus_plain_p99_ms']:+.2f} ms")
    print(f"  goal appliance ≤ plain + {GOAL_ADDED_MS:g} ms: {summary[f'goal_added_le_{GOAL_ADDED_MS:g}ms']}")
    report = write_report("appliance_latency", {
        "parameters": {"requests": arguments.requests, "rounds": arguments.rounds, "path": arguments.path,
                       "isolate": arguments.isolate, "warmup": WARMUP_REQUESTS, "cpus": os.cpu_count()},
        "results": {name: summary.__dict__ for name, summary in summaries.items()},
        "round_p50_ms": measured["round_p50s"],
        "summary": summary,
    }, comparisons(measured["round_p50s"], arguments.path))  # fmt: skip
    print(f"  report: {report.relative_to(REPOSITORY)}")


if __name__ == "__main__":
    main()
