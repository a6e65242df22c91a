"""Runs every localnet stand-in as its own server on loopback, in one asyncio process.

``serving(app)`` puts one ASGI app on a free port (hypercorn), ``serving_grpc(server)`` a grpclib server;
``run_localnet(state_dir)`` starts the whole localnet (Sui GraphQL, gRPC and optionally JSON-RPC, the admin
routes, a Walrus publisher and two aggregators, independent Seal key servers, a Seal committee with its
aggregator, the OpenAI stand-in), bootstraps or reloads its state and writes ``<state_dir>/localnet.json``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from grpclib.server import Server as GrpcServer
from hypercorn.asyncio import serve
from hypercorn.config import Config
from hypercorn.typing import ASGIFramework, ASGIReceiveCallable, ASGISendCallable, ASGISendEvent, Scope
from nacl.signing import SigningKey

from chain.address import sui_address
from chain.keys import decode_sui_private_key, encode_sui_private_key
from chain.reader import blob_id_to_u256
from localnet.errors import LocalnetError, StateError
from localnet.move import SUI_COIN_TYPE
from localnet.move_values import as_struct
from localnet.openai_api import build_openai_app
from localnet.seal_policy import AccountView
from localnet.seal_setup import (
    COMMITTEE_AGGREGATOR_NAME,
    CommitteeKeys,
    committee_member_name,
    deploy_seal,
    independent_server_name,
    new_committee_keys,
)
from localnet.sui_admin import build_admin_app
from localnet.sui_graphql import build_sui_graphql_app
from localnet.sui_grpc import build_sui_grpc_server
from localnet.sui_jsonrpc import build_sui_jsonrpc_app
from localnet.walrus import (
    DEFAULT_MAX_BLOB_BYTES,
    BlobStore,
    OwnedBlob,
    build_aggregator_app,
    build_publisher_app,
)
from localnet.world import World
from sealcrypto.key_server_secret import KeyServerSecret

GRACEFUL_SHUTDOWN_SECONDS = 2.0
STARTUP_TIMEOUT_SECONDS = 10.0
logger = logging.getLogger(__name__)


class _SignalStartup:
    """ASGI wrapper that sets an event once the app has finished its lifespan startup."""

    def __init__(self, app: ASGIFramework, started: asyncio.Event) -> None:
        self.app, self.started = app, started

    async def __call__(self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
        if scope["type"] != "lifespan":
            return await self.app(scope, receive, send)

        async def send_and_signal(message: ASGISendEvent) -> None:
            await send(message)
            if message["type"] == "lifespan.startup.complete":
                self.started.set()

        return await self.app(scope, receive, send_and_signal)


def listening_socket(host: str, port: int = 0) -> socket.socket:
    """A bound, listening TCP socket; port 0 lets the kernel pick a free port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit it; without it grpclib's small HTTP/2 frames meet delayed ACKs (~40 ms a call).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@contextlib.asynccontextmanager
async def serving(app: Any, *, name: str, sock: socket.socket | None = None,
                  host: str = "127.0.0.1") -> AsyncIterator[str]:
    """Serve ``app`` with hypercorn on ``sock`` (or a fresh loopback socket); yields its base URL.

    The socket is bound and listening before hypercorn starts, so the URL is known up front and early
    connections wait in the backlog instead of failing.
    """
    sock = sock if sock is not None else listening_socket(host)
    url = url_of(sock)
    config = Config()
    descriptor = sock.detach()
    config.bind = [f"fd://{descriptor}"]  # hypercorn wraps the descriptor after lifespan startup, then owns it
    config.accesslog = None
    config.loglevel = "WARNING"
    config.graceful_timeout = GRACEFUL_SHUTDOWN_SECONDS
    stop, started = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(serve(_SignalStartup(app, started), config, shutdown_trigger=stop.wait),
                               name=f"localnet-{name}")
    started_wait = asyncio.create_task(started.wait())
    try:
        await asyncio.wait({task, started_wait}, timeout=STARTUP_TIMEOUT_SECONDS,
                           return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            if not started.is_set():
                os.close(descriptor)  # hypercorn never took it over
            raise LocalnetError(f"{name} failed to start") from task.exception()
        if not started.is_set():
            raise LocalnetError(f"{name} did not start within {STARTUP_TIMEOUT_SECONDS} s")
        yield url
    finally:
        started_wait.cancel()
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await started_wait
        try:
            await asyncio.wait_for(task, GRACEFUL_SHUTDOWN_SECONDS * 3)
        except Exception:
            logger.exception("%s did not shut down cleanly", name)


@contextlib.asynccontextmanager
async def serving_grpc(server: GrpcServer, *, name: str, sock: socket.socket) -> AsyncIterator[str]:
    """Serve a grpclib ``server`` on the listening ``sock``; yields its ``http://`` (plaintext h2c) URL."""
    url = url_of(sock)
    try:
        await server.start(sock=sock)
    except OSError as error:
        sock.close()
        raise LocalnetError(f"{name} failed to start") from error
    try:
        yield url
    finally:
        server.close()
        try:
            await asyncio.wait_for(server.wait_closed(), GRACEFUL_SHUTDOWN_SECONDS * 3)
        except Exception:
            logger.exception("%s did not shut down cleanly", name)


# ---- the whole localnet -----------------------------------------------------------------------------------

INFO_FILE = "localnet.json"
SECRETS_FILE = "secrets.json"
WORLD_FILE = "world.json"
BLOBS_DIRECTORY = "blobs"
MAX_STATE_FILE_BYTES = 1024 * 1024
GAS_COINS = 5
GAS_COIN_MIST = 10_000_000_000  # 10 SUI each: enough for any localnet session
MAX_SERVER_WALLETS = 64
AGGREGATOR_NAMES = ("a", "b")
SUI_GRAPHQL_PATH = "/graphql"  # where build_sui_graphql_app serves
DEFAULT_COMMITTEE_MEMBERS = 3
DEFAULT_COMMITTEE_THRESHOLD = 2


@dataclasses.dataclass(frozen=True, repr=False)
class LocalnetSecrets:
    """Key material created on first start and kept in ``secrets.json`` (mode 0600)."""

    server_wallet_keys: tuple[str, ...]
    openai_api_key: str
    seal_master_keys: tuple[bytes, ...]
    seal_committee: CommitteeKeys

    def __repr__(self) -> str:
        return "LocalnetSecrets(<redacted>)"


def _write_private_json(path: Path, data: object) -> None:
    """Write JSON readable by the owner only, atomically (temp file + rename)."""
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)


def _read_json(path: Path) -> dict[str, Any]:
    if path.stat().st_size > MAX_STATE_FILE_BYTES:
        raise StateError(f"{path.name} exceeds {MAX_STATE_FILE_BYTES} bytes")
    try:
        data = json.loads(path.read_text("utf-8"))
    except ValueError as error:
        raise StateError(f"{path.name} is not valid JSON") from error
    if not isinstance(data, dict):
        raise StateError(f"{path.name} must hold a JSON object")
    return data


def _stored_committee(stored: object, threshold: int, members: int) -> CommitteeKeys | None:
    if not isinstance(stored, dict):
        return None
    try:
        keys = CommitteeKeys(bytes.fromhex(stored["master_key"]), int(stored["threshold"]),
                             tuple(bytes.fromhex(share) for share in stored["shares"]))
        KeyServerSecret.from_bytes(keys.master_key)
    except (KeyError, TypeError, ValueError) as error:
        raise StateError(f"{SECRETS_FILE} holds a malformed committee") from error
    return keys if (keys.threshold, len(keys.shares)) == (threshold, members) else None


def load_or_create_secrets(state_dir: Path, key_servers: int, rng: Callable[[int], bytes], *,
                           committee_threshold: int = DEFAULT_COMMITTEE_THRESHOLD,
                           committee_members: int = DEFAULT_COMMITTEE_MEMBERS, server_wallets: int = 1) -> LocalnetSecrets:
    """Reuse the persisted keys; generate what is missing (also extra key servers and wallets) and persist it."""
    path = state_dir / SECRETS_FILE
    stored = _read_json(path) if path.exists() else {}
    try:
        masters = [bytes.fromhex(text) for text in stored.get("seal_master_keys", [])]
        legacy = [stored["server_wallet_key"]] if "server_wallet_key" in stored else []  # before several wallets
        wallets = [str(key) for key in stored.get("server_wallet_keys", legacy)]
        while len(wallets) < server_wallets:
            wallets.append(encode_sui_private_key(rng(32)))
        for wallet in wallets:
            decode_sui_private_key(wallet)
    except (ValueError, TypeError) as error:
        raise StateError(f"{SECRETS_FILE} holds a malformed key") from error
    api_key = stored.get("openai_api_key") or "sk-localnet-" + rng(24).hex()
    while len(masters) < key_servers:
        masters.append(KeyServerSecret.generate(rng).to_bytes())
    committee = _stored_committee(stored.get("seal_committee"), committee_threshold, committee_members)
    if committee is None:
        committee = new_committee_keys(committee_threshold, committee_members, rng)
    secrets = LocalnetSecrets(tuple(wallets), api_key, tuple(masters), committee)
    _write_private_json(path, {
        "server_wallet_keys": wallets, "openai_api_key": api_key, "seal_master_keys": [master.hex() for master in masters],
        "seal_committee": {"master_key": committee.master_key.hex(), "threshold": committee.threshold,
                           "shares": [share.hex() for share in committee.shares]},
    })
    return secrets


def read_localnet_info(state_dir: Path | str) -> dict[str, Any]:
    """The parsed ``localnet.json`` of a (running) localnet."""
    path = Path(state_dir) / INFO_FILE
    if not path.exists():
        raise StateError(f"no {INFO_FILE} in the state directory; is the localnet running?")
    return _read_json(path)


def account_lookup(world: World) -> Callable[[str], Awaitable[AccountView | None]]:
    """The key servers read MemWal accounts straight from the world (a real one dry-runs on a full node)."""

    async def lookup(account_id: str) -> AccountView | None:
        item = world.get(account_id)
        if item is None or item.contents is None or item.type != f"{world.packages['memwal']}::account::MemWalAccount":
            return None
        account = item.struct
        delegates = tuple(as_struct(key).address("sui_address") for key in account.vector("delegate_keys"))
        return AccountView(item.object_id, account.address("owner"), bool(account.fields["active"]), delegates)

    return lookup


class WorldBlobChain:
    """The Walrus publisher's view of Sui: create Blob objects, find the ones its wallet owns."""

    def __init__(self, world: World) -> None:
        self.world = world

    def create_blob(self, blob_id: str, size: int, owner: str, *, end_epoch: int, deletable: bool) -> str:
        return self.world.create_blob_object(blob_id, size, owner, encoding_type="RS2", end_epoch=end_epoch,
                                             deletable=deletable)

    def owned_blob(self, owner: str, blob_id: str) -> OwnedBlob | None:
        wanted = blob_id_to_u256(blob_id)
        for item in self.world.owned_by(owner, f"{self.world.packages['walrus']}::blob::Blob"):
            fields = item.struct
            if fields.number("blob_id") == wanted:
                return OwnedBlob(item.object_id, fields.struct("storage").number("end_epoch"), bool(fields.fields["deletable"]))
        return None


def _bootstrap(world: World, secrets: LocalnetSecrets) -> None:
    """First start: packages, the registry and funded server wallets (each step is idempotent)."""
    world.publish_memwal_package()
    world.publish_walrus_package()
    world.create_registry()
    for key in secrets.server_wallet_keys:
        wallet_address = sui_address(bytes(SigningKey(decode_sui_private_key(key)).verify_key))
        if not world.owned_by(wallet_address, SUI_COIN_TYPE):
            for _ in range(GAS_COINS):
                world.fund(wallet_address, GAS_COIN_MIST)


@dataclasses.dataclass(frozen=True)
class LocalnetOptions:
    """How the localnet behaves; every default is the faithful-but-fast choice."""

    host: str = "127.0.0.1"
    key_servers: int = 3  # independent Seal key servers
    threshold: int = 2  # Seal threshold written to localnet.json for the independent servers
    committee_members: int = DEFAULT_COMMITTEE_MEMBERS
    committee_threshold: int = DEFAULT_COMMITTEE_THRESHOLD
    fixed_seal_policy: bool = True  # seal_approve as fixed by MemWal PR #371 (#369); False: the old rule
    max_blob_bytes: int = DEFAULT_MAX_BLOB_BYTES
    jsonrpc: bool = True  # False: a GraphQL/gRPC-only network, as Sui Foundation full nodes are now
    indexing_lag_seconds: float = 0.0  # GraphQL/gRPC reads trail execution by this much
    walrus_not_found_seconds: float = 0.0  # aggregators answer 404 this long after certification
    server_wallets: int = 1  # funded server wallets handed to the sidecar (SERVER_SUI_PRIVATE_KEYS)
    snapshot_every_transaction: bool = False  # the state saving before the journal (benchmarks compare)

    def validate(self) -> None:
        if not 1 <= self.threshold <= self.key_servers:
            raise ValueError("need 1 <= threshold <= key_servers")
        if not 2 <= self.committee_threshold <= self.committee_members:
            raise ValueError("need 2 <= committee threshold <= committee members (seal::key_server rule)")
        if not 1 <= self.server_wallets <= MAX_SERVER_WALLETS:
            raise ValueError(f"need 1 <= server wallets <= {MAX_SERVER_WALLETS}")
        if self.indexing_lag_seconds < 0 or self.walrus_not_found_seconds < 0:
            raise ValueError("lags cannot be negative")


@contextlib.asynccontextmanager
async def run_localnet(state_dir: Path | str, options: LocalnetOptions | None = None, *,
                       clock: Callable[[], float] = time.time,
                       rng: Callable[[int], bytes] = os.urandom, **overrides: Any) -> AsyncIterator[dict[str, Any]]:
    """Start every stand-in; yields the parsed ``localnet.json`` and stops them all on exit.

    ``overrides`` are ``LocalnetOptions`` fields (``run_localnet(dir, key_servers=1, threshold=1)``).
    """
    options = dataclasses.replace(options or LocalnetOptions(), **overrides)
    options.validate()
    state = Path(state_dir)
    state.mkdir(mode=0o700, parents=True, exist_ok=True)
    previous = _read_json(state / INFO_FILE) if (state / INFO_FILE).exists() else {}
    secrets = load_or_create_secrets(state, options.key_servers, rng, committee_threshold=options.committee_threshold,
                                     committee_members=options.committee_members, server_wallets=options.server_wallets)
    world = World(state / WORLD_FILE, clock=clock, rng=rng, indexing_lag_seconds=options.indexing_lag_seconds,
                  snapshot_every_transaction=options.snapshot_every_transaction)
    _bootstrap(world, secrets)
    memwal_package = world.packages["memwal"]
    store = BlobStore(state / BLOBS_DIRECTORY, max_blob_bytes=options.max_blob_bytes)

    apps: dict[str, Any] = {
        "sui-graphql": build_sui_graphql_app(world),
        "sui-admin": build_admin_app(world),
        "walrus-publisher": build_publisher_app(store, WorldBlobChain(world), max_blob_bytes=options.max_blob_bytes,
                                                current_epoch=lambda: world.epoch, clock=clock),
        **{f"walrus-aggregator-{name}": build_aggregator_app(
            store, name=name, not_found_after_certification_seconds=options.walrus_not_found_seconds, clock=clock)
           for name in AGGREGATOR_NAMES},
        "openai": build_openai_app(secrets.openai_api_key, clock=clock),
    }
    if options.jsonrpc:
        apps["sui-jsonrpc"] = build_sui_jsonrpc_app(world)
    seal_names = [*(independent_server_name(index) for index in range(options.key_servers)),
                  *(committee_member_name(party) for party in range(options.committee_members)), COMMITTEE_AGGREGATOR_NAME]
    sockets = {name: listening_socket(options.host) for name in [*apps, *seal_names, "sui-grpc"]}
    urls = {name: url_of(sock) for name, sock in sockets.items()}
    seal = deploy_seal(world, master_keys=secrets.seal_master_keys[: options.key_servers], committee=secrets.seal_committee,
                       urls=urls, previous=previous, account_lookup=account_lookup(world),
                       package_ids={memwal_package: memwal_package}, fixed_policy=options.fixed_seal_policy, clock=clock)
    apps.update(seal.apps)
    info = {
        "sui_network": "localnet",
        "sui_rpc_url": urls["sui-jsonrpc"] if options.jsonrpc else "",
        "sui_graphql_url": urls["sui-graphql"] + SUI_GRAPHQL_PATH,
        "sui_grpc_url": urls["sui-grpc"],
        "admin_url": urls["sui-admin"],
        "indexing_lag_seconds": options.indexing_lag_seconds,
        "walrus_publisher_url": urls["walrus-publisher"],
        "walrus_aggregator_urls": [urls[f"walrus-aggregator-{name}"] for name in AGGREGATOR_NAMES],
        "openai_api_base": urls["openai"] + "/v1", "openai_api_key": secrets.openai_api_key,
        "seal_key_servers": seal.independent, "seal_threshold": options.threshold, "seal_committee": seal.committee,
        "memwal_package_id": memwal_package, "memwal_registry_id": world.registry_id,
        "walrus_package_id": world.packages["walrus"], "server_wallet_keys": list(secrets.server_wallet_keys[: options.server_wallets]),
        "servers": urls,
    }
    async with contextlib.AsyncExitStack() as stack:
        try:
            for name, app in apps.items():
                await stack.enter_async_context(serving(app, name=name, sock=sockets.pop(name)))
            await stack.enter_async_context(serving_grpc(build_sui_grpc_server(world), name="sui-grpc",
                                                         sock=sockets.pop("sui-grpc")))
        finally:
            for sock in sockets.values():  # the ones never handed to a server
                sock.close()
        _write_private_json(state / INFO_FILE, info)
        yield info
