"""Host proxy bench: our asyncio proxy vs socat vs a direct connection, all over Unix sockets.

    python -m bench host_proxy [--megabytes 256] [--round-trips 5000] [--connections 1000]

One run measures, over the same path layout (client → unix front socket → proxy → unix target socket):
  (a) bulk throughput, MB/s: the client streams N MiB, half-closes, the target answers with the count;
  (b) request/response latency of 64-byte messages, p50/p99;
  (c) 1,000 concurrent connections held open through our proxy, each echoing, with the proxy's own
      ``host_proxy_connections_active`` gauge read while all are open.
The target server runs in its own process (``--serve-target``), the proxies in theirs, the client here.
Goals: ≥ 0.9x socat's throughput, ≤ 1 ms added p99. Results: table on stdout, build/bench/host_proxy.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import Comparison, LatencySummary, print_table, write_report
from memwal_common.signals import shutdown_on_signals

REPOSITORY = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024
SEND_CHUNK_BYTES = 1 * MIB
MESSAGE_BYTES = 64
WARMUP_ROUND_TRIPS = 200
ROUNDS = 5  # each variant: best throughput of 5 transfers, latency samples pooled over 5 runs
CONNECT_BATCH = 100
START_TIMEOUT_SECONDS = 10.0
TARGET_BACKLOG = 4096
SINK_RECEIVE_BYTES = 256 * 1024
MODE_SINK = b"S"
MODE_ECHO = b"E"
WANTED_OPEN_FILES = 16_384


# --------------------------------------------------------------------------- target server (child process)
class _TargetProtocol(asyncio.BufferedProtocol):
    """First byte picks the mode: S = count bytes until EOF then answer the count, E = echo."""

    def __init__(self) -> None:
        self._buffer = bytearray(SINK_RECEIVE_BYTES)
        self._mode = b""
        self._count = 0
        self._transport: asyncio.WriteTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not isinstance(transport, asyncio.WriteTransport):
            raise TypeError("a stream transport was expected")
        self._transport = transport

    def _write(self, data: bytes) -> None:
        if self._transport is not None:
            self._transport.write(data)

    def get_buffer(self, sizehint: int) -> memoryview:
        return memoryview(self._buffer)

    def buffer_updated(self, nbytes: int) -> None:
        data = memoryview(self._buffer)[:nbytes]
        if not self._mode:
            self._mode, data = bytes(data[:1]), data[1:]
        if self._mode == MODE_ECHO:
            self._write(bytes(data))
        else:
            self._count += len(data)

    def eof_received(self) -> bool:
        if self._mode == MODE_SINK:
            self._write(self._count.to_bytes(8, "big"))
        return False  # close after the answer


def serve_target(path: str) -> None:
    async def run() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_unix_server(_TargetProtocol, path, backlog=TARGET_BACKLOG)
        await shutdown_on_signals().wait()
        server.close()

    asyncio.run(run())


# --------------------------------------------------------------------------- client side
def _connect(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(path))
    return sock


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError(f"closed after {len(data)} of {size} bytes")
        data += chunk
    return bytes(data)


def measure_throughput(path: Path, total_bytes: int) -> float:
    """One bulk transfer, in MB/s (10^6 bytes per second)."""
    block = memoryview(os.urandom(SEND_CHUNK_BYTES))
    sock = _connect(path)
    try:
        started = time.perf_counter()
        sock.sendall(MODE_SINK)
        for _ in range(total_bytes // SEND_CHUNK_BYTES):
            sock.sendall(block)
        sock.shutdown(socket.SHUT_WR)
        received = int.from_bytes(_recv_exactly(sock, 8), "big")
        elapsed = time.perf_counter() - started
    finally:
        sock.close()
    if received != total_bytes:
        raise RuntimeError(f"target counted {received} bytes, sent {total_bytes}")
    return total_bytes / elapsed / 1e6


def measure_latency(path: Path, round_trips: int) -> list[float]:
    message = os.urandom(MESSAGE_BYTES)
    sock = _connect(path)
    samples_ms: list[float] = []
    try:
        sock.sendall(MODE_ECHO)
        for index in range(WARMUP_ROUND_TRIPS + round_trips):
            started = time.perf_counter_ns()
            sock.sendall(message)
            if _recv_exactly(sock, MESSAGE_BYTES) != message:
                raise RuntimeError("echo mismatch")
            if index >= WARMUP_ROUND_TRIPS:
                samples_ms.append((time.perf_counter_ns() - started) / 1e6)
    finally:
        sock.close()
    return samples_ms


async def hold_connections(path: Path, count: int, read_active: Callable[[], float]) -> dict[str, float]:
    """Open ``count`` echo connections, keep all open, check each echoes, read the proxy's gauge."""
    connections: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    started = time.perf_counter()
    served = 0
    try:
        for start in range(0, count, CONNECT_BATCH):
            # Blocking connects: a full Unix backlog makes a non-blocking connect fail with EAGAIN.
            socks = await asyncio.to_thread(lambda: [_connect(path) for _ in range(min(CONNECT_BATCH, count - start))])
            connections += await asyncio.gather(*(asyncio.open_unix_connection(sock=sock) for sock in socks))
        opened = time.perf_counter() - started

        async def exchange(index: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
            message = MODE_ECHO + index.to_bytes(8, "big")
            writer.write(message)
            return await asyncio.wait_for(reader.readexactly(8), 30) == message[1:]

        results = await asyncio.gather(*(exchange(i, r, w) for i, (r, w) in enumerate(connections)))
        served = sum(results)
        active_at_proxy = await asyncio.to_thread(read_active)
        return {
            "requested": count,
            "served": served,
            "active_at_proxy": active_at_proxy,
            "open_seconds": opened,
            "total_seconds": time.perf_counter() - started,
        }
    finally:
        for _, writer in connections:
            writer.close()
        await asyncio.gather(*(writer.wait_closed() for _, writer in connections), return_exceptions=True)


def read_metric(metrics_path: Path, name: str) -> float:
    sock = _connect(metrics_path)
    try:
        sock.sendall(b"GET /metrics HTTP/1.0\r\n\r\n")
        response = bytearray()
        while chunk := sock.recv(65536):
            response += chunk
    finally:
        sock.close()
    total = 0.0
    for line in response.decode().splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


# --------------------------------------------------------------------------- processes
def _wait_until_connectable(path: Path, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode}")
        try:
            _connect(path).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on {path}") from None
            time.sleep(0.02)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _start(command: list[str], ready_path: Path) -> subprocess.Popen:
    environment = dict(os.environ, PYTHONPATH=str(REPOSITORY))
    process = subprocess.Popen(command, cwd=REPOSITORY, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_until_connectable(ready_path, process)
    except BaseException:
        _stop(process)
        raise
    return process


def raise_open_file_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = WANTED_OPEN_FILES if hard == resource.RLIM_INFINITY else min(hard, WANTED_OPEN_FILES)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))  # children inherit it
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench host_proxy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--megabytes", type=int, default=256, help="MiB per bulk transfer (best of 5 rounds)")
    parser.add_argument("--round-trips", type=int, default=10000, help="64-byte echo round trips per variant")
    parser.add_argument("--connections", type=int, default=1000, help="concurrent connections through our proxy")
    arguments = parser.parse_args(sys.argv[1:])
    total_bytes = arguments.megabytes * MIB
    open_files = raise_open_file_limit()
    socat = shutil.which("socat")
    workdir = Path(tempfile.mkdtemp(prefix="hpbench-"))
    target, front, metrics = workdir / "target.sock", workdir / "front.sock", workdir / "metrics.sock"
    results: dict[str, dict] = {}
    processes: list[subprocess.Popen] = []
    try:
        processes.append(_start([sys.executable, "-m", "bench.host_proxy", "--serve-target", str(target)], target))
        fronts = {"direct": target, "socat": workdir / "socat.sock", "host_proxy": front}
        commands = {
            "host_proxy": [sys.executable, "-m", "host_proxy", "--ingress", f"unix:{front}=unix:{target}",
                           "--max-connections", str(arguments.connections + 100), "--metrics", f"unix:{metrics}"],
        }  # fmt: skip
        if socat:
            commands["socat"] = [socat, f"UNIX-LISTEN:{fronts['socat']},fork,backlog={TARGET_BACKLOG}", f"UNIX-CONNECT:{target}"]
        else:
            del fronts["socat"]
        for name, command in commands.items():
            processes.append(_start(command, fronts[name]))
        # Rounds interleave the variants, so a noisy neighbour on a shared machine hurts all of them alike.
        throughput_rounds: dict[str, list[float]] = {name: [] for name in fronts}
        latency_samples: dict[str, list[float]] = {name: [] for name in fronts}
        for _ in range(ROUNDS):
            for name, path in fronts.items():
                throughput_rounds[name].append(measure_throughput(path, total_bytes))
                latency_samples[name] += measure_latency(path, arguments.round_trips // ROUNDS)
        for name in fronts:
            results[name] = {"throughput_mb_s": max(throughput_rounds[name]),
                             "latency_ms": LatencySummary.of(latency_samples[name]).__dict__}  # fmt: skip
        results["host_proxy"]["concurrency"] = asyncio.run(
            hold_connections(front, arguments.connections, lambda: read_metric(metrics, "host_proxy_connections_active"))
        )
    finally:
        for process in processes:
            _stop(process)
        shutil.rmtree(workdir, ignore_errors=True)

    ours = results["host_proxy"]
    rows = [
        [name, f"{r['throughput_mb_s']:.0f}", f"{r['latency_ms']['p50_ms'] * 1000:.0f}", f"{r['latency_ms']['p99_ms'] * 1000:.0f}"]
        for name, r in results.items()
    ]
    print_table("host proxy over Unix sockets", ["path", "MB/s", "p50 µs", "p99 µs"], rows)
    summary = {
        "added_p99_ms_vs_direct": ours["latency_ms"]["p99_ms"] - results["direct"]["latency_ms"]["p99_ms"],
        "throughput_vs_direct": ours["throughput_mb_s"] / results["direct"]["throughput_mb_s"],
    }
    if "socat" in results:
        summary["throughput_vs_socat"] = ours["throughput_mb_s"] / results["socat"]["throughput_mb_s"]
        summary["p99_vs_socat_ms"] = ours["latency_ms"]["p99_ms"] - results["socat"]["latency_ms"]["p99_ms"]
    summary["goal_throughput_ge_0_9x_socat"] = summary.get("throughput_vs_socat", 0.0) >= 0.9
    summary["goal_added_p99_le_1ms"] = summary["added_p99_ms_vs_direct"] <= 1.0
    held = ours["concurrency"]
    summary["all_connections_served"] = held["served"] == held["requested"]
    for key, value in summary.items():
        print(f"  {key}: {value:.3f}" if isinstance(value, float) else f"  {key}: {value}")
    print(f"  concurrency: {held['served']}/{held['requested']} served, proxy gauge showed "
          f"{held['active_at_proxy']:.0f} active, opened in {held['open_seconds']:.2f} s")  # fmt: skip
    baselines = [name for name in ("socat", "direct") if name in results]
    comparisons = [
        *(Comparison.of_rounds("host_proxy", "bulk throughput over unix sockets", subject="host_proxy", baseline=name,
                               unit="MB/s", subject_rounds=throughput_rounds["host_proxy"],
                               baseline_rounds=throughput_rounds[name], goal=">= 0.9 x socat")
          for name in baselines),
        *(Comparison.of_chunks("host_proxy", f"{MESSAGE_BYTES}-byte echo round trip", subject="host_proxy", baseline=name,
                               unit="ms", subject_samples=latency_samples["host_proxy"],
                               baseline_samples=latency_samples[name], rounds=ROUNDS)
          for name in baselines),
    ]  # fmt: skip
    report = write_report("host_proxy", {
        "parameters": {"megabytes": arguments.megabytes, "round_trips": arguments.round_trips,
                       "message_bytes": MESSAGE_BYTES, "connections": arguments.connections,
                       "open_files_limit": open_files, "socat": bool(socat), "cpus": os.cpu_count()},
        "results": results,
        "summary": summary,
    }, comparisons)  # fmt: skip
    print(f"  report: {report.relative_to(REPOSITORY)}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve-target":
        serve_target(sys.argv[2])
    else:
        main()
