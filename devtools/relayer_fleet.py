"""Several relayer instances on one dev stack: scale-out as an operator runs it, on one machine.

``RelayerFleet(stack, instances=3)`` keeps the stack's own relayer as instance 0 and starts ``instances - 1``
more (``python -m relayer``, each with its own sidecar, port and data directory) with the same environment:
the same PostgreSQL, Redis (a Redis Cluster when the stack's relayer env sets REDIS_CLUSTER), localnet and
server key pool. A load balancer would spread clients over ``urls``; tests and benchmarks pick instances
themselves. Used by tests/e2e/test_scale_out.py and bench/scale_out.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from .devstack import DevStack, start_until_healthy
from .processes import ChildProcess, free_port


@dataclass(frozen=True)
class RelayerInstance:
    url: str
    process: ChildProcess


class RelayerFleet:
    def __init__(self, stack: DevStack, *, instances: int) -> None:
        if instances < 1:
            raise ValueError("a fleet has at least one instance")
        if stack.relayer is None:
            raise ValueError("start the stack first")
        self._stack = stack
        self.instances = [RelayerInstance(stack.relayer_url, stack.relayer)]
        for number in range(1, instances):
            port = free_port()
            env = stack.relayer_environment()
            env["BIND"] = f"127.0.0.1:{port}"
            env["MEMWAL_DATA_DIR"] = str(stack.data_dir / f"relayer-{number}")
            log = stack.data_dir / "logs" / f"relayer-{number}.log"
            self.instances.append(RelayerInstance(f"http://127.0.0.1:{port}", ChildProcess(f"relayer-{number}", ["-m", "relayer"], env, log)))

    @property
    def urls(self) -> list[str]:
        return [instance.url for instance in self.instances]

    async def __aenter__(self) -> RelayerFleet:
        try:
            for instance in self.instances[1:]:
                await self.start(instance)
        except BaseException:
            await self.stop_extra()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop_extra()

    async def start(self, instance: RelayerInstance) -> None:
        await start_until_healthy(instance.process, instance.url)

    async def stop_extra(self) -> None:
        """Stop the instances this fleet started (the stack stops its own)."""
        for instance in self.instances[1:]:
            await instance.process.stop()
