"""``make run``: the TEE appliance on one machine: an isolated "enclave", an untrusted host, an operator.

One manifest (``<dir>/manifest.toml``, appliance_layout.py) describes the deployment, as on a Nitro parent.

Host side (this process and its children)::

    PostgreSQL + Redis              tcp:127.0.0.1:*   (external-style servers, embedded_databases.py)
    localnet stand-ins              tcp:127.0.0.1:*   (Sui JSON-RPC + GraphQL, Walrus, Seal, OpenAI)
    python -m host_proxy --manifest ingress tcp:127.0.0.1:8443 → unix:<dir>/sockets/port-8443.sock
                                    egress  unix:<dir>/sockets/port-81NN.sock → tcp:127.0.0.1:<upstream>
                                    configuration channel unix:<dir>/sockets/port-7000.sock

"Enclave" (as root: a fresh network namespace with only ``lo``; else a plain process, with a warning)::

    python -m devtools.simulated_enclave   the runtime of ``python -m enclave`` with the NSM simulator:
                                    fetches its configuration on port-7000.sock, TLS on port-8443.sock,
                                    loopback forwarders 127.0.0.1:<upstream> → port-81NN.sock

Operator (this process, after the enclave is up): attest the enclave through the host proxy, seal the
secrets (server wallet keys, OpenAI key, DATABASE_URL, REDIS_URL, sidecar token) to it, wait for the
relayer, create a demo account, print what a user runs. Ctrl-C stops everything and deletes the namespace.

As a library (the e2e test)::

    async with Appliance(directory, port=0, capture=TrafficCapture(), provision=False) as appliance:
        ...                               # the enclave answers 503 on /api/* here
        await appliance.provision()
        async with appliance.attested_session() as session: ...
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import secrets
import shutil
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from attestation.client import AttestedClient, AttestedSession, provision_secrets
from attestation.policy import PCRs
from attestation.trust import TrustRoot
from enclave.egress import EgressAllowlist
from host_proxy.channels import EnclaveChannels
from localnet.cli import CreatedAccount, create_account
from localnet.environment import EMBEDDING_MODEL as LOCALNET_EMBEDDING_MODEL
from localnet.environment import relayer_secrets
from manifest import EgressRoute, Manifest
from memwal_common.signals import shutdown_on_signals

from .appliance_banner import banner, user_snippet
from .appliance_capture import RecordingTap, TrafficCapture
from .appliance_layout import (
    ApplianceLayout,
    build_manifest,
    claim_embedding_space,
    enclave_arguments,
    enclave_process_environment,
    proxy_arguments,
    write_manifest,
    write_simulator_pcrs,
)
from .appliance_netns import NetworkNamespace, can_isolate
from .embedded_databases import start_embedded_postgres, start_embedded_redis
from .processes import REPOSITORY, ChildProcess, StartError, child_environment, free_port, supervise
from .relayer_modes import EGRESS_POLICIES, EMBEDDINGS, relayer_mode_environment

DEFAULT_PORT = 8443
# The demo's limits, raised from upstream's defaults (30 points/min per delegate key would stop a quick start
# after a few remembers: each remember and each status poll counts); printed in the banner.
DEMO_RATE_LIMITS = {
    "RATE_LIMIT_DELEGATE_KEY_PER_MINUTE": "600",
    "RATE_LIMIT_REQUESTS_PER_MINUTE": "1200",
    "RATE_LIMIT_REQUESTS_PER_HOUR": "20000",
}
READY_TIMEOUT_SECONDS = 120.0
READY_POLL_SECONDS = 0.2
Progress = Callable[[str], None]
# Development data: durability traded for speed.
DEVELOPMENT_POSTGRES_SETTINGS = {"fsync": "off", "synchronous_commit": "off"}


class ApplianceError(StartError):
    """A step of the appliance failed; the message names the step and the log to read."""


def _now() -> datetime:
    return datetime.now(UTC)


class Appliance:
    """See the module docstring. ``port=0`` picks a free host port."""

    ready_timeout_seconds = READY_TIMEOUT_SECONDS  # provisioning → relayer ready (an emulated guest needs more)

    def __init__(
        self,
        data_dir: Path | str,
        *,
        port: int = DEFAULT_PORT,
        isolate: bool | None = None,
        capture: TrafficCapture | None = None,
        provision: bool = True,
        relayer_env: Mapping[str, str] | None = None,
        progress: Progress = print,
        fresh: bool = False,
        embeddings: str = "local",
        egress_policy: str = "private",
        llm_plaintext: bool = False,
    ) -> None:
        """``embeddings``/``egress_policy`` (devtools/relayer_modes.py) default to `make run`'s; ``llm_plaintext``
        marks the LLM stand-in's route ``allow_plaintext`` (under "private" only: the manifest refuses it otherwise)."""
        self.layout = ApplianceLayout(Path(data_dir).resolve(), port or free_port(), tapped=capture is not None)
        self.isolate = can_isolate() if isolate is None else isolate
        self.capture = capture
        self._provision_on_start = provision
        mode = relayer_mode_environment(embeddings=embeddings, egress_policy=egress_policy)
        self._relayer_env = {**DEMO_RATE_LIMITS, **mode, **(relayer_env or {})}
        self.embeddings, self.egress_policy, self.llm_plaintext = embeddings, egress_policy, llm_plaintext
        self._fresh = fresh
        self._progress = progress
        self._stack = AsyncExitStack()
        self.info: dict[str, Any] = {}
        self.database_url = ""
        self.redis_url = ""
        self.routes: tuple[EgressRoute, ...] = ()
        self.namespace: NetworkNamespace | None = None
        self.children: list[ChildProcess] = []  # localnet, host proxy, enclave: watched by ``main``
        self.enclave: ChildProcess | None = None
        self.manifest: Manifest | None = None
        self.expected_pcrs: dict[int, bytes] = {}
        self.configuration_digest = b""
        self.account: Any = None
        self.provisioned = False
        self.timings: dict[str, float] = {}
        self._secrets: dict[str, str] = {}

    @property
    def url(self) -> str:
        return self.layout.url

    @property
    def egress_allowlist(self) -> str:
        """The enclave's allowlist in ``EgressAllowlist.parse`` form (for probes run inside the namespace)."""
        assert self.manifest is not None
        channels = EnclaveChannels.parse(self.layout.enclave_transport)
        return EgressAllowlist.from_document(self.manifest.enclave, channels).text()

    @property
    def provisioned_secrets(self) -> Mapping[str, str]:
        """What the operator sealed to the enclave (tests check none of it crosses the host in clear)."""
        return dict(self._secrets)

    def trust_root(self) -> TrustRoot:
        return TrustRoot.from_pem(self.layout.test_root_path.read_bytes(), allow_untrusted_test_root=True)

    def attested_session(self, *, expected_pcrs: Mapping[int, bytes] | None = None, **options: Any):
        """``AttestedClient.connect`` to the enclave through the host proxy, pinned to this configuration."""
        return AttestedClient.connect(
            self.url, expected_pcrs=PCRs(expected_pcrs or self.expected_pcrs), trust_root=self.trust_root(),
            now=_now, config_hash=self.configuration_digest, **options,
        )  # fmt: skip

    async def __aenter__(self) -> Appliance:
        try:
            await self.start()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._stack.aclose()

    @asynccontextmanager
    async def _step(self, key: str, title: str) -> AsyncIterator[None]:
        self._progress(f"… {title}")
        started = time.monotonic()
        yield
        self.timings[key] = time.monotonic() - started
        self._progress(f"  done in {self.timings[key]:.1f} s")

    async def start(self) -> None:
        started = time.monotonic()
        layout = self.layout
        if self._fresh and layout.data_dir.exists():
            self._progress(f"… --fresh: removing {layout.data_dir} (demo account, keys, test root, databases)")
            shutil.rmtree(layout.data_dir)
        has_data = (layout.data_dir / "databases").exists()
        for directory in (layout.data_dir, layout.sockets, layout.enclave_sockets, layout.host_sockets, layout.logs):
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        space = f"{self._relayer_env.get('EMBEDDING_PROVIDER', 'openai')} {self._relayer_env.get('EMBEDDING_MODEL', LOCALNET_EMBEDDING_MODEL)}"
        claim_embedding_space(layout, space, has_data=has_data)
        for stale in layout.sockets.glob("**/*.sock"):
            stale.unlink()
        if not self.isolate:
            reason = "isolation turned off" if can_isolate() else "not root (or no iproute2)"
            self._progress(
                f"WARNING: {reason}: the enclave runs as a plain process that shares this host's network. "
                "Nothing is isolated; run as root for a network namespace with only lo."
            )
        async with self._step("databases", "PostgreSQL (pgvector) and Redis on loopback TCP"):
            await self._start_databases()
        async with self._step("localnet", "localnet stand-ins (Sui, Walrus, Seal key servers, OpenAI-compatible)"):
            await self._start_localnet()
        self.routes = layout.egress_routes(
            self.info, database_url=self.database_url, redis_url=self.redis_url, plaintext_llm=self.llm_plaintext
        )
        self.manifest = write_manifest(layout, build_manifest(layout, self.info, self.routes, extra=self._relayer_env))
        self.configuration_digest = self.manifest.enclave.digest()
        title = f"host proxy from {layout.manifest_path.name}: ingress {layout.url} + {len(self.routes)} egress routes"
        async with self._step("host_proxy", title):
            await self._start_host_proxy()
        async with self._step("enclave", f"enclave runtime (simulator attester) in {self.enclave_description()}"):
            await self._start_enclave()
        if self._provision_on_start:
            await self.provision()
            async with self._step("account", "demo account on the localnet"):
                await self.create_demo_account()
            self.write_quickstart()
        self.timings["total"] = time.monotonic() - started

    def enclave_description(self) -> str:
        """Where the enclave runs, for the progress lines (a QEMU test boot says otherwise)."""
        return "a network namespace with only lo" if self.isolate else "a plain process (NOT isolated)"

    async def _start_databases(self) -> None:
        # Loopback TCP, not Unix sockets: the enclave reaches them through egress tunnels, like managed databases.
        directory = self.layout.data_dir / "databases"
        postgres = await asyncio.to_thread(
            start_embedded_postgres, directory / "postgres", port=free_port(), settings=DEVELOPMENT_POSTGRES_SETTINGS
        )
        self._stack.callback(postgres.stop)
        redis = await asyncio.to_thread(start_embedded_redis, directory / "redis", port=free_port())
        self._stack.callback(redis.stop)
        self.database_url, self.redis_url = postgres.url, redis.url

    async def _start_child(self, child: ChildProcess) -> ChildProcess:
        await child.start()
        self._stack.push_async_callback(child.stop)
        self.children.append(child)
        return child

    async def _start_localnet(self) -> None:
        state = self.layout.data_dir / "localnet"
        info_path = state / "localnet.json"
        info_path.unlink(missing_ok=True)  # a fresh file tells us this run's servers are up
        log = self.layout.logs / "localnet.log"
        localnet = await self._start_child(ChildProcess("localnet", ["-m", "localnet", "--state", str(state)], child_environment(), log))
        await localnet.wait_until(info_path.exists, f"localnet did not start (see {log})")
        self.info = json.loads(info_path.read_text())

    async def _start_host_proxy(self) -> None:
        layout = self.layout
        if self.capture is not None:
            for name, listen, target in layout.tapped_ports(self.routes):
                tap = RecordingTap(name, listen, target, self.capture)
                await tap.start()
                self._stack.push_async_callback(tap.close)
        log = layout.logs / "host-proxy.log"
        proxy = await self._start_child(ChildProcess("host-proxy", proxy_arguments(layout), child_environment(), log))

        def listening() -> bool:
            sockets = [layout.host_socket(route.vsock_port) for route in self.routes]
            return all(path.exists() for path in sockets) and _tcp_accepts(layout.port)

        await proxy.wait_until(listening, f"the host proxy did not start (see {log})")

    async def _start_enclave(self) -> None:
        layout = self.layout
        self.expected_pcrs, source = write_simulator_pcrs(layout, REPOSITORY)
        self._progress(f"  simulated PCRs from {source}")
        layout.test_root_path.unlink(missing_ok=True)
        prefix: list[str] = []
        if self.isolate:
            self.namespace = NetworkNamespace.create(f"memwal-{os.getpid()}")
            self._stack.callback(self.namespace.delete)
            prefix = self.namespace.command([])
            self._progress(f"  network namespace {self.namespace.name}: interfaces {self.namespace.interfaces()}")
        log = layout.logs / "enclave.log"
        arguments = enclave_arguments(layout, isolated=self.isolate)
        enclave = ChildProcess("enclave", arguments, enclave_process_environment(), log, command_prefix=prefix)
        self.enclave = await self._start_child(enclave)

        def serving() -> bool:
            return layout.test_root_path.exists() and _unix_accepts(layout.enclave_ingress)

        await enclave.wait_until(serving, f"the enclave runtime did not start (see {log})")

    async def provision(self) -> None:
        """Operator: attest through the host proxy, seal the secrets to the enclave, wait for the relayer."""
        if self.provisioned:
            return
        self._secrets = {
            **relayer_secrets(self.info),
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "SIDECAR_AUTH_TOKEN": secrets.token_urlsafe(32),
        }
        self._progress(f"… operator: verify the attestation through the host proxy ({self.url})")
        started = time.monotonic()
        async with self.attested_session(observer=lambda line: self._progress(f"  {line}")) as session:
            self.timings["attest"] = time.monotonic() - started
            async with self._step("provision", "operator: seal the secrets to the attested key, wait for the relayer"):
                response = await provision_secrets(session, self._secrets)
                if response.status_code != 202:
                    raise ApplianceError(f"/provision answered {response.status_code}: {response.text[:200]}")
                await self._wait_until_ready(session)
        self.provisioned = True

    async def _wait_until_ready(self, session: AttestedSession) -> None:
        deadline = time.monotonic() + self.ready_timeout_seconds
        while time.monotonic() < deadline:
            state = (await session.http.get("/health")).json()["enclave"]["relayer"]
            if state == "ready":
                return
            if state == "failed":
                break
            await asyncio.sleep(READY_POLL_SECONDS)
        raise ApplianceError(f"the relayer inside the enclave did not become ready (see {self.layout.logs / 'enclave.log'})")

    @property
    def rate_limits(self) -> dict[str, str]:
        """The relayer's rate-limit variables in this deployment's manifest."""
        return {name: value for name, value in self._relayer_env.items() if name.startswith("RATE_LIMIT_")}

    async def create_demo_account(self) -> None:
        """The demo account of an earlier run if the localnet still has it, else a new one (kept for next time)."""
        path = self.layout.demo_account_path
        if path.exists():
            saved = CreatedAccount(**json.loads(path.read_text()))
            if await self._account_exists(saved.account_id):
                self.account = saved
                self._progress(f"  kept the demo account {saved.account_id} ({path.name})")
                return
        self.account = await create_account(self.info, label="appliance")
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as file:
            json.dump(dataclasses.asdict(self.account), file, indent=2)

    async def _account_exists(self, account_id: str) -> bool:
        request = {"jsonrpc": "2.0", "id": 1, "method": "sui_getObject", "params": [account_id, {"showType": True}]}
        async with httpx.AsyncClient(timeout=10.0) as http:
            answer = (await http.post(self.info["sui_rpc_url"], json=request)).json()
        return isinstance(answer.get("result"), dict) and "data" in answer["result"]

    def write_quickstart(self) -> Path:
        """The README's quick start with this run's values filled in (appliance_banner.user_snippet)."""
        assert self.account is not None
        layout = self.layout
        text = user_snippet(
            url=self.url, pcrs=str(layout.pcrs_path), manifest=str(layout.manifest_path),
            test_root=str(layout.test_root_path), key=self.account.delegate_private_key_hex, account=self.account.account_id,
        )  # fmt: skip
        layout.quickstart_path.write_text(text)
        layout.quickstart_path.chmod(0o600)  # it holds the demo delegate key
        return layout.quickstart_path


def _tcp_accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _unix_accepts(path: Path) -> bool:
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.appliance",
        description="Run the TEE appliance on this machine: PostgreSQL, Redis and the offline localnet on loopback "
        "TCP, the host proxy (the only bridge), and the enclave runtime with a SIMULATED Nitro attester in a network "
        "namespace with only lo (as root; otherwise a plain, unisolated process). Then act as the operator: attest, "
        "provision the secrets sealed to the enclave, create a demo account, and print the SDK lines to use it.",
    )
    parser.add_argument(
        "--data-dir", default=os.environ.get("MEMWAL_APPLIANCE_DIR", ".data/appliance"),
        help="state, sockets and logs [.data/appliance]",
    )  # fmt: skip
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"host-side HTTPS ingress port [{DEFAULT_PORT}]")
    parser.add_argument("--no-isolation", action="store_true", help="run the enclave as a plain process even as root")
    parser.add_argument(
        "--fresh", action="store_true",
        help="start over: a new demo account, keys, test root and databases (by default they are kept in --data-dir)",
    )  # fmt: skip
    parser.add_argument(
        "--embeddings", choices=EMBEDDINGS, default="local",
        help="local: all-MiniLM-L6-v2 inside the enclave; openai: the localnet's OpenAI-compatible stand-in [local]",
    )  # fmt: skip
    parser.add_argument(
        "--egress-policy", choices=EGRESS_POLICIES, default="private",
        help="private: no memory text leaves the enclave (needs --embeddings local; analyze/ask answer 403 unless "
        "--allow-llm-plaintext); open: embeddings and LLM upstreams receive it [private]",
    )  # fmt: skip
    parser.add_argument(
        "--allow-llm-plaintext", action="store_true",
        help="mark the LLM stand-in's [[egress]] route allow_plaintext, so analyze/ask work under --egress-policy private",
    )
    args = parser.parse_args(argv)
    if args.egress_policy == "private" and args.embeddings != "local":
        parser.error("--egress-policy private keeps memory text inside the enclave: it needs --embeddings local")
    if args.allow_llm_plaintext and args.egress_policy != "private":
        parser.error("--allow-llm-plaintext only means something with --egress-policy private")

    def progress(line: str) -> None:
        print(line, flush=True)

    async def main_async() -> int:
        stop = shutdown_on_signals()
        appliance = Appliance(
            args.data_dir, port=args.port, isolate=False if args.no_isolation else None, progress=progress, fresh=args.fresh,
            embeddings=args.embeddings, egress_policy=args.egress_policy, llm_plaintext=args.allow_llm_plaintext,
        )  # fmt: skip
        try:
            async with appliance:
                progress(banner(appliance))
                return await supervise(appliance.children, stop, appliance.layout.logs)
        except (StartError, OSError, httpx.HTTPError, ValueError) as error:
            print(f"appliance failed: {type(error).__name__}: {error}", file=sys.stderr)
            return 1

    return asyncio.run(main_async())


if __name__ == "__main__":
    sys.exit(main())
