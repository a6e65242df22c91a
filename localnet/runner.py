"""Runs every localnet stand-in as its own HTTP server on loopback, in one asyncio process.

``serving(app)`` puts one ASGI app on a free port (hypercorn); ``run_localnet(state_dir)`` starts the whole
localnet (Sui JSON-RPC and GraphQL, Walrus publisher and two aggregators, Seal key servers, the OpenAI
stand-in), bootstraps or reloads its state and writes ``<state_dir>/localnet.json``.
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

from hypercorn.asyncio import serve
from hypercorn.config import Config
from hypercorn.typing import ASGIFramework, ASGIReceiveCallable, ASGISendCallable, ASGISendEvent, Scope
from nacl.signing import SigningKey

from chain.address import sui_address
from chain.keys import decode_sui_private_key, encode_sui_private_key
from localnet.errors import LocalnetError, StateError
from localnet.move import LOCALNET_OPERATOR, SUI_COIN_TYPE
from localnet.move_values import Struct, as_struct
from localnet.openai_api import build_openai_app
from localnet.seal_policy import AccountView
from localnet.seal_server import build_seal_server_app
from localnet.sui_graphql import build_sui_graphql_app
from localnet.sui_jsonrpc import build_sui_jsonrpc_app
from localnet.walrus import DEFAULT_MAX_BLOB_BYTES, BlobStore, build_aggregator_app, build_publisher_app
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


# ---- the whole localnet -----------------------------------------------------------------------------------

INFO_FILE = "localnet.json"
SECRETS_FILE = "secrets.json"
WORLD_FILE = "world.json"
BLOBS_DIRECTORY = "blobs"
MAX_STATE_FILE_BYTES = 1024 * 1024
GAS_COINS = 5
GAS_COIN_MIST = 10_000_000_000  # 10 SUI each: enough for any localnet session
AGGREGATOR_NAMES = ("a", "b")
SUI_GRAPHQL_PATH = "/graphql"  # where build_sui_graphql_app serves


@dataclasses.dataclass(frozen=True, repr=False)
class LocalnetSecrets:
    """Key material created on first start and kept in ``secrets.json`` (mode 0600)."""

    server_wallet_key: str
    openai_api_key: str
    seal_master_keys: tuple[bytes, ...]

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


def load_or_create_secrets(state_dir: Path, key_servers: int, rng: Callable[[int], bytes]) -> LocalnetSecrets:
    """Reuse the persisted keys; generate what is missing (also extra key servers) and persist it."""
    path = state_dir / SECRETS_FILE
    stored = _read_json(path) if path.exists() else {}
    try:
        masters = [bytes.fromhex(text) for text in stored.get("seal_master_keys", [])]
        wallet = stored.get("server_wallet_key") or encode_sui_private_key(rng(32))
        decode_sui_private_key(wallet)
    except ValueError as error:
        raise StateError(f"{SECRETS_FILE} holds a malformed key") from error
    api_key = stored.get("openai_api_key") or "sk-localnet-" + rng(24).hex()
    while len(masters) < key_servers:
        masters.append(KeyServerSecret.generate(rng).to_bytes())
    secrets = LocalnetSecrets(wallet, api_key, tuple(masters))
    _write_private_json(path, {"server_wallet_key": wallet, "openai_api_key": api_key,
                               "seal_master_keys": [master.hex() for master in masters]})
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


def _bootstrap(world: World, secrets: LocalnetSecrets) -> None:
    """First start: packages, the registry and a funded server wallet (each step is idempotent)."""
    world.publish_memwal_package()
    world.publish_walrus_package()
    world.create_registry()
    wallet_address = sui_address(bytes(SigningKey(decode_sui_private_key(secrets.server_wallet_key)).verify_key))
    if not world.owned_by(wallet_address, SUI_COIN_TYPE):
        for _ in range(GAS_COINS):
            world.fund(wallet_address, GAS_COIN_MIST)


def _key_server_object(world: World, previous: dict[str, Any], index: int, url: str, public_key: bytes) -> str:
    """Reuse the key server object of the last run (new URL) so old ciphertexts stay decryptable."""
    known = previous.get("seal_key_servers", [])
    object_id = known[index].get("objectId") if index < len(known) and isinstance(known[index], dict) else None
    if isinstance(object_id, str) and world.get(object_id) is not None:
        _update_key_server_url(world, object_id, url)
        return object_id
    return world.register_key_server(f"localnet-{index}", url, public_key)


def _update_key_server_url(world: World, object_id: str, url: str) -> None:
    """Seal's ``key_server::update``: the owner points the V1 record at a new URL (ports change per run)."""
    with world.lock:
        record = next(item for item in world.fields_of(object_id) if item.type.endswith("::KeyServerV1>"))
        value = record.struct.struct("value")
        if value.fields["url"] != url:
            with world.transaction(LOCALNET_OPERATOR) as tx:
                tx.update(record, fields={"value": Struct(value.type, {**value.fields, "url": url})})


@contextlib.asynccontextmanager
async def run_localnet(state_dir: Path | str, *, host: str = "127.0.0.1", key_servers: int = 3, threshold: int = 2,
                       fixed_seal_policy: bool = False, max_blob_bytes: int = DEFAULT_MAX_BLOB_BYTES,
                       clock: Callable[[], float] = time.time,
                       rng: Callable[[int], bytes] = os.urandom) -> AsyncIterator[dict[str, Any]]:
    """Start every stand-in; yields the parsed ``localnet.json`` and stops them all on exit."""
    if not 1 <= threshold <= key_servers:
        raise ValueError("need 1 <= threshold <= key_servers")
    state = Path(state_dir)
    state.mkdir(mode=0o700, parents=True, exist_ok=True)
    previous = _read_json(state / INFO_FILE) if (state / INFO_FILE).exists() else {}
    secrets = load_or_create_secrets(state, key_servers, rng)
    world = World(state / WORLD_FILE, clock=clock, rng=rng)
    _bootstrap(world, secrets)
    memwal_package = world.packages["memwal"]
    store = BlobStore(state / BLOBS_DIRECTORY, max_blob_bytes=max_blob_bytes)

    def on_blob_created(blob_id: str, size: int, owner: str, *, end_epoch: int) -> str:
        return world.create_blob_object(blob_id, size, owner, encoding_type="RS2", end_epoch=end_epoch)

    apps: dict[str, Any] = {
        "sui-jsonrpc": build_sui_jsonrpc_app(world),
        "sui-graphql": build_sui_graphql_app(world),
        "walrus-publisher": build_publisher_app(store, on_blob_created, max_blob_bytes=max_blob_bytes,
                                                current_epoch=lambda: world.epoch),
        **{f"walrus-aggregator-{name}": build_aggregator_app(store, name=name) for name in AGGREGATOR_NAMES},
        "openai": build_openai_app(secrets.openai_api_key, clock=clock),
    }
    sockets = {name: listening_socket(host) for name in [*apps, *(f"seal-{i}" for i in range(key_servers))]}
    urls = {name: url_of(sock) for name, sock in sockets.items()}
    lookup = account_lookup(world)
    seal_servers = []
    for index in range(key_servers):
        secret = KeyServerSecret.from_bytes(secrets.seal_master_keys[index])
        url = urls[f"seal-{index}"]
        object_id = _key_server_object(world, previous, index, url, secret.public_key)
        apps[f"seal-{index}"] = build_seal_server_app(secret, object_id, lookup, clock=clock,
                                                      fixed_policy=fixed_seal_policy,
                                                      package_ids={memwal_package: memwal_package})
        seal_servers.append({"objectId": object_id, "url": url, "weight": 1})
    info = {
        "sui_network": "localnet",
        "sui_rpc_url": urls["sui-jsonrpc"], "sui_graphql_url": urls["sui-graphql"] + SUI_GRAPHQL_PATH,
        "walrus_publisher_url": urls["walrus-publisher"],
        "walrus_aggregator_urls": [urls[f"walrus-aggregator-{name}"] for name in AGGREGATOR_NAMES],
        "openai_api_base": urls["openai"] + "/v1", "openai_api_key": secrets.openai_api_key,
        "seal_key_servers": seal_servers, "seal_threshold": threshold,
        "memwal_package_id": memwal_package, "memwal_registry_id": world.registry_id,
        "walrus_package_id": world.packages["walrus"], "server_wallet_keys": [secrets.server_wallet_key],
        "servers": urls,
    }
    async with contextlib.AsyncExitStack() as stack:
        try:
            for name, app in apps.items():
                await stack.enter_async_context(serving(app, name=name, sock=sockets.pop(name)))
        finally:
            for sock in sockets.values():  # the ones never handed to hypercorn
                sock.close()
        _write_private_json(state / INFO_FILE, info)
        yield info
