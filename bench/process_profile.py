"""Which process spends the CPU, and on what: CPU seconds per process role and py-spy's busiest functions.

Shared by the benches that profile a stack (``remember_stages``, ``auth``, ``recall``). py-spy is not a dependency of the
project: a bench takes the path of a binary you have (``--py-spy PATH``) and samples the processes you name
with ``py-spy record --format raw`` (collapsed stacks) until it is stopped.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections import defaultdict
from pathlib import Path

import psutil

from bench.common import REPORT_DIRECTORY
from devtools.devstack import DevStack

SAMPLING_RATE_HZ = 100
TOP_FUNCTIONS = 8
MACHINE = "machine (all processes)"


def stack_processes(stack: DevStack, *, relayer_pid: int | None = None) -> dict[str, list[int]]:
    """The stack's processes by role; the sidecar apart from the relayer that started it. ``relayer_pid``: that
    relayer (and its sidecar) instead of the stack's own."""
    roles: dict[str, list[int]] = defaultdict(list)
    for child in (stack.localnet, stack.indexer):
        if child is not None and child.process is not None:
            roles[child.name].append(child.process.pid)
    if relayer_pid is None and stack.relayer is not None and stack.relayer.process is not None:
        relayer_pid = stack.relayer.process.pid
    if relayer_pid is not None:
        relayer = psutil.Process(relayer_pid)
        roles["relayer"].append(relayer.pid)
        roles["sidecar"] += [child.pid for child in relayer.children()]
    postmaster = stack.data_dir / "postgres" / "postmaster.pid"
    if postmaster.exists():
        roles["postgres"].append(int(postmaster.read_text().split()[0]))
    # Redis rewrites its process title, so find it as what it is: a child of this process (one stack per run).
    roles["redis"] += [child.pid for child in psutil.Process().children() if child.name().startswith("redis-server")]
    roles["bench client"].append(os.getpid())  # signing and sending the requests, polling the jobs
    return dict(roles)


def process_tree_seconds(root_pid: int) -> float:
    """User + system seconds of a process and everything it started (0 if it is gone)."""
    total = 0.0
    try:
        root = psutil.Process(root_pid)
        for process in [root, *root.children(recursive=True)]:
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system + times.children_user + times.children_system
    except psutil.NoSuchProcess:
        pass
    return total


ONLY_THE_PROCESS = {"relayer", "bench client"}  # their children are roles of their own (sidecar, Redis)


def cpu_seconds(roles: dict[str, list[int]]) -> dict[str, float]:
    """User + system seconds per role so far, and the whole machine's busy seconds (all cores, every process)."""
    seconds = {}
    for role, pids in roles.items():
        if role in ONLY_THE_PROCESS:
            try:
                times = psutil.Process(pids[0]).cpu_times()
                seconds[role] = times.user + times.system
            except psutil.NoSuchProcess:
                seconds[role] = 0.0
        else:
            seconds[role] = sum(process_tree_seconds(pid) for pid in pids)
    machine = psutil.cpu_times()
    seconds[MACHINE] = machine.user + machine.nice + machine.system + getattr(machine, "irq", 0.0) + getattr(
        machine, "softirq", 0.0) + getattr(machine, "steal", 0.0)
    return seconds


async def start_sampling(py_spy: str, roles: dict[str, list[int]], *, sampled: tuple[str, ...],
                         report: str) -> dict[str, tuple[asyncio.subprocess.Process, Path]]:
    """One ``py-spy record`` per sampled role (its first process), writing collapsed stacks to
    build/bench/<report>.<role>.stacks until it is interrupted."""
    REPORT_DIRECTORY.mkdir(parents=True, exist_ok=True)
    samplers = {}
    for role in sampled:
        for pid in roles.get(role, [])[:1]:
            output = REPORT_DIRECTORY / f"{report}.{role}.stacks"
            process = await asyncio.create_subprocess_exec(
                py_spy, "record", "--pid", str(pid), "--rate", str(SAMPLING_RATE_HZ), "--format", "raw",
                "--output", str(output), "--nonblocking",
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
            samplers[role] = (process, output)
    return samplers


async def stop_sampling(samplers: dict[str, tuple[asyncio.subprocess.Process, Path]]) -> dict[str, dict]:
    """Interrupt the samplers (they write their files then) and summarise each file's busiest functions."""
    for process, _output in samplers.values():
        process.send_signal(signal.SIGINT)
    summaries = {}
    for role, (process, output) in samplers.items():
        await asyncio.wait_for(process.wait(), 60)
        if output.exists():
            summaries[role] = busiest_functions(output.read_text(errors="replace"))
    return summaries


PROJECT_PACKAGES = ("relayer/", "sidecar/", "chain/", "localnet/", "sealcrypto/", "memwal_common/")
ENTRY_POINT_SHARE = 0.75  # a project frame under this much of everything is an entry point (main, the server)


def busiest_functions(collapsed: str) -> dict:
    """From py-spy's collapsed stacks (``frame;frame;... count``): the functions with the most own samples, and
    the project's functions with the most samples under them (entry points left out), as fractions of the busy
    samples (idle waits excluded)."""
    own: dict[str, int] = defaultdict(int)
    under: dict[str, int] = defaultdict(int)
    busy = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = stack.split(";")
        if any(idle in frames[-1] for idle in ("select (selectors.py", "wait (threading.py", "_worker (concurrent")):
            continue  # an idle event loop or worker thread
        count = int(count_text)
        busy += count
        own[frames[-1]] += count
        for frame in {frame.rsplit(":", 1)[0] + ")" for frame in frames if any(p in frame for p in PROJECT_PACKAGES)}:
            under[frame] += count  # by function (line numbers dropped), once per stack
    under = {frame: count for frame, count in under.items() if count <= ENTRY_POINT_SHARE * busy}

    def top(table: dict[str, int]) -> list[tuple[str, float]]:
        return [(frame, count / busy) for frame, count in sorted(table.items(), key=lambda item: -item[1])[:TOP_FUNCTIONS]]

    return {"busy_samples": busy, "own": top(own), "under": top(under)}
