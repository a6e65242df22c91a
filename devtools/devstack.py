"""``make run-plain``: the plain stack on one machine, offline, without an enclave.

Starts, as separate processes: the localnet stand-ins (Sui, Walrus, Seal key servers, OpenAI-compatible),
then the relayer (which starts its sidecar) and the indexer, against embedded PostgreSQL+pgvector and
Redis unless DATABASE_URL / REDIS_URL point at real servers. Creates a demo account with a delegate key
and prints what the official SDK needs. Ctrl-C stops everything in reverse order.

The same ``DevStack`` drives the end-to-end tests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx

from localnet.cli import create_account
from localnet.environment import relayer_configuration, relayer_secrets
from memwal_common.signals import shutdown_on_signals

from .embedded_databases import start_embedded_postgres, start_embedded_redis
from .processes import ChildProcess, StartError, child_environment, free_port, supervise
from .relayer_modes import EMBEDDINGS, relayer_mode_environment


class DevStack:
    def __init__(self, data_dir: Path | str, *, port: int = 0, database_url: str | None = None,
                 redis_url: str | None = None, relayer_env: dict[str, str] | None = None,
                 sui_protocol: str | None = "graphql", localnet_args: tuple[str, ...] = (), quiet: bool = True,
                 embeddings: str = "openai") -> None:
        """``sui_protocol`` None leaves SUI_PROTOCOL unset (the relayer's default); ``localnet_args`` go to
        ``python -m localnet`` (``--no-jsonrpc``, ``--indexing-lag-ms MS``, …); ``embeddings``: local or openai
        (devtools/relayer_modes.py; the tests' default is the stand-in, `make run-plain`'s the local model)."""
        self.data_dir = Path(data_dir).resolve()
        self.port = port or free_port()
        self.database_url = database_url
        self.redis_url = redis_url
        self.embeddings = embeddings
        self.relayer_env = {**relayer_mode_environment(embeddings=embeddings), **(relayer_env or {})}
        self.sui_protocol = sui_protocol
        self.localnet_args = tuple(localnet_args)
        self.quiet = quiet
        self.info: dict[str, Any] = {}
        self.account: Any = None
        self._stack = AsyncExitStack()
        self.localnet: ChildProcess | None = None
        self.relayer: ChildProcess | None = None
        self.indexer: ChildProcess | None = None

    @property
    def relayer_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _log(self, name: str) -> Path | None:
        return self.data_dir / "logs" / f"{name}.log" if self.quiet else None

    async def __aenter__(self) -> "DevStack":
        try:
            await self.start()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def start(self) -> None:
        (self.data_dir / "logs").mkdir(parents=True, exist_ok=True, mode=0o700)
        await self._start_databases()
        await self._start_localnet()
        self.account = await create_account(self.info, label="devstack")
        await asyncio.sleep(float(self.info.get("indexing_lag_seconds") or 0))  # until GraphQL/gRPC show it
        self.relayer = ChildProcess("relayer", ["-m", "relayer"], self.relayer_environment(), self._log("relayer"))
        await self.start_relayer()
        self._stack.push_async_callback(self.stop_relayer)
        self.indexer = ChildProcess("indexer", ["-m", "relayer.indexer"], self.relayer_environment(), self._log("indexer"))
        await self.indexer.start()
        self._stack.push_async_callback(self.indexer.stop)

    async def _start_databases(self) -> None:
        if self.database_url is None:
            postgres = await asyncio.to_thread(start_embedded_postgres, self.data_dir / "postgres")
            self._stack.callback(postgres.stop)
            self.database_url = postgres.url
        if self.redis_url is None:
            redis = await asyncio.to_thread(start_embedded_redis, self.data_dir / "redis")
            self._stack.callback(redis.stop)
            self.redis_url = redis.url

    async def _start_localnet(self) -> None:
        state = self.data_dir / "localnet"
        info_path = state / "localnet.json"
        info_path.unlink(missing_ok=True)  # a fresh file tells us this run's servers are up
        self.localnet = ChildProcess("localnet", ["-m", "localnet", "--state", str(state), *self.localnet_args],
                                     child_environment(), self._log("localnet"))
        await self.localnet.start()
        self._stack.push_async_callback(self.localnet.stop)
        await self.localnet.wait_until(info_path.exists, f"localnet did not start (see {self._log('localnet')})")
        self.info = json.loads(info_path.read_text())

    def relayer_environment(self) -> dict[str, str]:
        info = self.info
        env = {
            "BIND": f"127.0.0.1:{self.port}",
            "MEMWAL_DATA_DIR": str(self.data_dir / "relayer"),
            "DATABASE_URL": self.database_url or "",
            "REDIS_URL": self.redis_url or "",
            **relayer_configuration(info, sui_protocol=self.sui_protocol or "graphql"),
            **relayer_secrets(info),
            "POLL_INTERVAL_SECS": "1",
        }
        if self.sui_protocol is None:
            del env["SUI_PROTOCOL"]
        env.update(self.relayer_env)
        return child_environment(env)

    async def start_relayer(self) -> None:
        assert self.relayer is not None
        await start_until_healthy(self.relayer, self.relayer_url)

    async def stop_relayer(self, *, kill: bool = False) -> None:
        if self.relayer is not None:
            await self.relayer.stop(kill=kill)


async def start_until_healthy(relayer: ChildProcess, url: str) -> None:
    """Start a relayer process and wait until its /health answers 200."""
    await relayer.start()
    async with httpx.AsyncClient() as http:

        async def healthy() -> bool:
            try:
                return (await http.get(f"{url}/health", timeout=2.0)).status_code == 200
            except httpx.HTTPError:
                return False

        await relayer.wait_until(healthy, f"{relayer.name} did not become healthy (see {relayer.log_path})")


def _banner(stack: DevStack) -> str:
    account = stack.account
    return "\n".join(
        [
            "",
            "memwal-enclave dev stack is up (offline: every upstream is a localnet stand-in).",
            f"  relayer        {stack.relayer_url}",
            f"  sui graphql    {stack.info['sui_graphql_url']}",
            f"  sui grpc       {stack.info.get('sui_grpc_url') or '-'}",
            f"  sui json-rpc   {stack.info.get('sui_rpc_url') or 'off (--no-jsonrpc)'}",
            f"  read through   {stack.sui_protocol or 'graphql'}",
            f"  embeddings     {'all-MiniLM-L6-v2 in the relayer (no text leaves it)' if stack.embeddings == 'local' else 'the OpenAI-compatible stand-in'}",
            f"  logs           {stack.data_dir / 'logs'}",
            "",
            "Use it from the official SDK (pip install memwal):",
            "",
            "    import asyncio",
            "    from memwal import MemWal",
            f"    memwal = MemWal.create(key=\"{account.delegate_private_key_hex}\",",
            f"                           account_id=\"{account.account_id}\",",
            f"                           server_url=\"{stack.relayer_url}\")",
            "    print(asyncio.run(memwal.remember_and_wait(\"I am allergic to peanuts\")))",
            "    print(asyncio.run(memwal.recall(\"food allergies\")))",
            "",
            f"Another account: python -m localnet.cli create-account --state {stack.data_dir / 'localnet'}",
            "Press Ctrl-C to stop.",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.devstack",
        description="Run the relayer, sidecar, indexer and offline localnet stand-ins on this machine "
        "(embedded PostgreSQL and Redis unless DATABASE_URL / REDIS_URL are set).",
    )
    parser.add_argument("--data-dir", default=os.environ.get("MEMWAL_DEV_DIR", ".data"), help="state directory [.data]")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")), help="relayer port [8000]")
    parser.add_argument("--sui-protocol", choices=["graphql", "grpc", "jsonrpc"], default="graphql",
                        help="how relayer, sidecar and indexer read Sui [graphql]")
    parser.add_argument("--no-jsonrpc", action="store_true", help="the localnet serves GraphQL and gRPC only")
    parser.add_argument("--indexing-lag-ms", type=int, default=0, metavar="MS",
                        help="the localnet's GraphQL/gRPC reads trail execution by this much [0]")
    parser.add_argument("--embeddings", choices=EMBEDDINGS, default="local",
                        help="local: all-MiniLM-L6-v2 in the relayer; openai: the localnet's OpenAI-compatible stand-in [local]")
    args = parser.parse_args(argv)
    if args.no_jsonrpc and args.sui_protocol == "jsonrpc":
        parser.error("--sui-protocol jsonrpc needs the localnet's JSON-RPC (drop --no-jsonrpc)")

    async def main_async() -> int:
        stop = shutdown_on_signals()
        print("starting localnet, databases, sidecar, relayer and indexer …", flush=True)
        stack = DevStack(
            args.data_dir, port=args.port, database_url=os.environ.get("DATABASE_URL") or None,
            redis_url=os.environ.get("REDIS_URL") or None, sui_protocol=args.sui_protocol,
            localnet_args=(*(["--no-jsonrpc"] if args.no_jsonrpc else []), "--indexing-lag-ms", str(args.indexing_lag_ms)),
            embeddings=args.embeddings,
        )
        try:
            async with stack:
                print(_banner(stack), flush=True)
                children = [child for child in (stack.localnet, stack.relayer, stack.indexer) if child is not None]
                return await supervise(children, stop, stack.data_dir / "logs")
        except StartError as exc:
            print(f"dev stack failed: {exc}", file=sys.stderr)
            return 1

    return asyncio.run(main_async())


if __name__ == "__main__":
    sys.exit(main())
