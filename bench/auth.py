"""Signed-request and /health throughput against the bare floor, account cache off (upstream) and on, in one run.

    python -m bench auth [--clients 16] [--seconds 2] [--rounds 5]

One DevStack, two relayers on it: ``AUTH_ACCOUNT_CACHE_TTL_SECS=0`` (every request re-reads the account on
chain, as upstream) and the default TTL. Each round measures, in rotating order, signed ``POST /api/stats``,
``GET /health`` (answered from the background status) and ``GET /version`` on both. Requests are signed before the timed window and sent over K keep-alive
connections by a minimal HTTP/1.1 client (wrk-like: the client's own CPU stays small on a 2-core machine).
Rate limits are on, set high enough never to deny, so the limiter's Redis work is measured too.
Comparison rows (bench/common.py): signed ÷ /version on each relayer (goal ≥ 0.5), cached ÷ uncached signed,
and /health ÷ /version (goal ≥ 0.8): medians of the per-round ratios with their p10–p90 spread.
Then one longer measurement of each on the cached relayer gives CPU milliseconds per request by process (relayer,
sidecar, PostgreSQL, Redis, this client, the machine): what a signed request costs beyond /version, and where
(``--py-spy PATH`` adds the relayer's busiest functions; collapsed stacks in build/bench/auth_<kind>.relayer.stacks).
Writes build/bench/auth.json.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import nacl.signing

from bench.common import COMPARISON_COLUMNS, Comparison, print_table, write_report
from bench.process_profile import SAMPLING_RATE_HZ, cpu_seconds, stack_processes, start_sampling, stop_sampling
from devtools.devstack import DevStack
from devtools.processes import ChildProcess, free_port

HIGH_LIMIT = str(10**9)
BODY = b'{"namespace":"bench"}'
MAX_RESPONSE_HEAD = 16 * 1024
PROFILED_ROLES = ("relayer", "sidecar", "postgres", "redis", "bench client")


@dataclass(frozen=True)
class Relayer:
    name: str
    ttl_seconds: int
    port: int


class RequestSigner:
    def __init__(self, seed: bytes, account_id: str) -> None:
        self._key = nacl.signing.SigningKey(seed)
        self._public = bytes(self._key.verify_key).hex()
        self._account_id = account_id

    def stats_request(self, port: int) -> bytes:
        ts, nonce = str(int(time.time())), str(uuid.uuid4())
        message = f"{ts}.POST./api/stats.{hashlib.sha256(BODY).hexdigest()}.{nonce}.{self._account_id}".encode()
        head = (
            f"POST /api/stats HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(BODY)}\r\nx-public-key: {self._public}\r\n"
            f"x-signature: {self._key.sign(message).signature.hex()}\r\nx-timestamp: {ts}\r\nx-nonce: {nonce}\r\n"
            f"x-account-id: {self._account_id}\r\n\r\n"
        )
        return head.encode() + BODY


def get_request(port: int, path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\n\r\n".encode()


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    if len(head) > MAX_RESPONSE_HEAD:
        raise RuntimeError("response head too large")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = next((int(line.split(":", 1)[1]) for line in lines[1:] if line.lower().startswith("content-length:")), 0)
    await reader.readexactly(length)
    return status


async def requests_per_second(port: int, requests: Iterator[bytes], clients: int, seconds: float) -> float:
    """Send ``requests`` (each used once) over ``clients`` connections for ``seconds``; answered 200s per second."""
    queue = requests
    done = 0
    deadline = time.perf_counter() + seconds

    async def connection() -> None:
        nonlocal done
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < deadline:
                request = next(queue, None)
                if request is None:
                    return
                writer.write(request)
                try:
                    status = await _read_response(reader)
                except (asyncio.IncompleteReadError, ConnectionResetError):
                    # hypercorn closes a keep-alive connection after keep_alive_max_requests (1 000): open another
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    continue
                if status != 200:
                    raise RuntimeError(f"port {port} answered {status}")
                done += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(clients)))
    return done / (time.perf_counter() - started)


async def start_relayer(stack: DevStack, relayer: Relayer, data_dir: Path) -> ChildProcess:
    environment = stack.relayer_environment()
    environment.update({
        "BIND": f"127.0.0.1:{relayer.port}", "MEMWAL_DATA_DIR": str(data_dir / relayer.name),
        "AUTH_ACCOUNT_CACHE_TTL_SECS": str(relayer.ttl_seconds),
    })
    child = ChildProcess(relayer.name, ["-m", "relayer"], environment, data_dir / "logs" / f"{relayer.name}.log")
    await child.start()
    async with httpx.AsyncClient() as http:

        async def healthy() -> bool:
            try:
                return (await http.get(f"http://127.0.0.1:{relayer.port}/health", timeout=2.0)).status_code == 200
            except httpx.HTTPError:
                return False

        await child.wait_until(healthy, f"{relayer.name} did not become healthy")
    return child


async def run(args: argparse.Namespace) -> tuple[dict[str, Any], list[Comparison]]:
    data_dir = Path(tempfile.mkdtemp(prefix="memwal-bench-auth-"))
    data_dir.chmod(0o755)  # embedded PostgreSQL may run as another user
    limits = {"RATE_LIMIT_REQUESTS_PER_MINUTE": HIGH_LIMIT, "RATE_LIMIT_REQUESTS_PER_HOUR": HIGH_LIMIT,
              "RATE_LIMIT_DELEGATE_KEY_PER_MINUTE": HIGH_LIMIT, "LOG_FORMAT": "json"}
    relayers = [Relayer("ttl-0", 0, free_port()), Relayer(f"ttl-{args.ttl}", args.ttl, free_port())]
    samples: dict[str, dict[str, list[float]]] = {r.name: {"signed": [], "version": [], "health": []} for r in relayers}
    try:
        async with DevStack(data_dir, relayer_env=limits) as stack:
            signer = RequestSigner(bytes.fromhex(stack.account.delegate_private_key_hex), stack.account.account_id)
            children = [await start_relayer(stack, relayer, data_dir) for relayer in relayers]
            try:
                expected = {relayer.name: 2000.0 for relayer in relayers}
                subjects = [(relayer, kind) for relayer in relayers for kind in ("signed", "version", "health")]
                for round_number in range(args.rounds + 1):  # round 0 warms up and is discarded
                    shift = round_number % len(subjects)
                    for relayer, kind in subjects[shift:] + subjects[:shift]:
                        requests = requests_of(kind, relayer.port, signer, expected[relayer.name], args.seconds)
                        rate = await requests_per_second(relayer.port, requests, args.clients, args.seconds)
                        if kind == "signed":
                            expected[relayer.name] = max(rate, 1.0)
                        if round_number:
                            samples[relayer.name][kind].append(rate)
                cpu = await cpu_per_request(stack, children[1], relayers[1], signer, expected[relayers[1].name], args)
            finally:
                for child in children:
                    await child.stop()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    cached = relayers[1]
    per_relayer = {relayer.name: samples[relayer.name] for relayer in relayers}
    comparisons = [
        *(Comparison.of_rounds(
            "auth", "req/s", subject=f"signed POST /api/stats, {relayer.name}", baseline=f"GET /version, {relayer.name}",
            unit="req/s", subject_rounds=samples[relayer.name]["signed"], baseline_rounds=samples[relayer.name]["version"],
            goal=">= 0.5",
        ) for relayer in relayers),
        Comparison.of_rounds(
            "auth", "req/s", subject=f"signed POST /api/stats, {cached.name}", baseline="signed POST /api/stats, ttl-0",
            unit="req/s", subject_rounds=samples[cached.name]["signed"], baseline_rounds=samples["ttl-0"]["signed"],
        ),
        Comparison.of_rounds(
            "auth", "req/s", subject=f"GET /health, {cached.name}", baseline=f"GET /version, {cached.name}",
            unit="req/s", subject_rounds=samples[cached.name]["health"], baseline_rounds=samples[cached.name]["version"],
            goal=">= 0.8",
        ),
    ]  # fmt: skip
    payload = {"clients": args.clients, "seconds": args.seconds, "rounds": args.rounds, "rounds_per_relayer": per_relayer,
               "cpu_per_request": cpu}
    return payload, comparisons


def requests_of(kind: str, port: int, signer: RequestSigner, signed_rate: float, seconds: float) -> Iterator[bytes]:
    """What one measurement sends: fresh signed requests (each used once; half again as many as the last
    signed rate needs) or the same GET of ``/<kind>``."""
    if kind == "signed":
        return iter([signer.stats_request(port) for _ in range(int(signed_rate * seconds * 1.5) + 200)])
    return itertools.repeat(get_request(port, f"/{kind}"))


async def cpu_per_request(stack: DevStack, child: ChildProcess, relayer: Relayer, signer: RequestSigner,
                          signed_rate: float, args: argparse.Namespace) -> dict[str, Any]:
    """Where a signed request's cost goes beyond /version's: CPU milliseconds per request by process (the
    relayer, its sidecar, PostgreSQL, Redis, this client, the whole machine) over one longer measurement of
    each on the cached relayer, and with ``--py-spy`` the relayer's busiest functions in each."""
    assert child.process is not None
    roles = stack_processes(stack, relayer_pid=child.process.pid)
    roles = {role: pids for role, pids in roles.items() if role in PROFILED_ROLES}
    seconds = 2 * args.seconds
    result: dict[str, Any] = {}
    for kind in ("version", "signed"):
        requests = requests_of(kind, relayer.port, signer, signed_rate, seconds)
        samplers = (await start_sampling(args.py_spy, roles, sampled=("relayer",), report=f"auth_{kind}")
                    if args.py_spy else {})
        before = cpu_seconds(roles)
        rate = await requests_per_second(relayer.port, requests, args.clients, seconds)
        after = cpu_seconds(roles)
        sampled = await stop_sampling(samplers)
        done = max(rate * seconds, 1.0)
        result[kind] = {"req_per_s": round(rate, 1),
                        "cpu_ms_per_request": {role: round((after[role] - before[role]) / done * 1000, 3) for role in after},
                        "busiest": sampled.get("relayer")}
    return result


def print_cpu_per_request(cpu: dict[str, Any]) -> None:
    version, signed = cpu["version"], cpu["signed"]
    rows = [(role, version["cpu_ms_per_request"][role], signed["cpu_ms_per_request"][role],
             round(signed["cpu_ms_per_request"][role] - version["cpu_ms_per_request"][role], 3))
            for role in signed["cpu_ms_per_request"]]
    print_table(f"CPU ms per request, cached relayer (/version {version['req_per_s']} req/s, "
                f"signed /api/stats {signed['req_per_s']} req/s)", ["process", "/version", "signed", "difference"], rows)
    for kind in ("version", "signed"):
        busiest = cpu[kind]["busiest"]
        if busiest:
            print_table(f"relayer, {kind}: functions with the most samples under them ({busiest['busy_samples']} "
                        f"busy samples at {SAMPLING_RATE_HZ} Hz)", ["function", "share"],
                        [(frame, f"{share:.1%}") for frame, share in busiest["under"]])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench auth", description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16, help="keep-alive connections [16]")
    parser.add_argument("--seconds", type=float, default=2.0, help="length of one measurement [2]")
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds after one warm-up round [5]")
    parser.add_argument("--ttl", type=int, default=10, help="AUTH_ACCOUNT_CACHE_TTL_SECS of the cached relayer [10]")
    parser.add_argument("--py-spy", metavar="PATH", help="also sample the cached relayer with this py-spy binary "
                        "(not a project dependency) in the CPU-per-request measurement")
    args = parser.parse_args()
    payload, comparisons = asyncio.run(run(args))
    print_table(
        f"auth ({args.clients} connections, {args.seconds} s per measurement, {args.rounds} rounds)",
        COMPARISON_COLUMNS, [comparison.row() for comparison in comparisons],
    )
    print_cpu_per_request(payload["cpu_per_request"])
    print(f"\nreport: {write_report('auth', payload, comparisons)}")


if __name__ == "__main__":
    main()
