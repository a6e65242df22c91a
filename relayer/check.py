"""``python -m relayer check``: the effective configuration, and whether the network agrees with it.

Prints every relayer setting under its variable name with where the value came from (``env``,
``preset:<network>`` for what SUI_NETWORK filled in, or ``default``); secrets are redacted (``<set>``, a key
count, a URL without its password). Then, unless ``--offline``, checks what the network can confirm:

- each configured Sui endpoint (GraphQL, gRPC, JSON-RPC) answers, all name one chain, and on mainnet or
  testnet it is the preset's chain;
- MEMWAL_PACKAGE_ID is a package at version 1 (the original id SDKs derive Seal ids from); MEMWAL_REGISTRY_ID
  and WALRUS_PACKAGE_ID exist.

The sidecar's part (its settings; key servers, server wallets, Walrus) is ``python -m sidecar check``, run
here as the sidecar itself would be run, with the same environment: the relayer never reads keys or imports
Seal. Exit status: 0 every check passed (or ``--offline``); 1 a check failed; 2 the configuration is
invalid; 3 nothing failed but something could not be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Mapping
from typing import TextIO

import httpx

from chain.backends import make_chain_reader
from chain.errors import ChainError, ChainUnavailable
from chain.reader import ChainReader
from memwal_common.config_report import CheckFailed, ExitStatus, Report, print_settings, worst
from memwal_common.environment import SettingsError
from memwal_common.networks import preset_for
from memwal_common.shared_settings import SUI_URL_VARIABLES, SuiProtocol
from relayer.settings import Settings

SIDECAR_CHECK_TIMEOUT_SECONDS = 300.0
_PLACEHOLDER_TOKEN = "-" * 32  # the sidecar requires one; a check serves nothing


async def check_chain(report: Report, settings: Settings, http: httpx.AsyncClient) -> None:
    urls: dict[SuiProtocol, str] = {"graphql": settings.sui_graphql_url, "grpc": settings.sui_grpc_url,
                                    "jsonrpc": settings.sui_rpc_url}
    readers = {protocol: make_chain_reader(url, protocol=protocol, http=http) for protocol, url in urls.items() if url}
    try:
        identifiers: dict[str, str] = {}
        for protocol, reader in readers.items():
            await _attempt(report, f"{SUI_URL_VARIABLES[protocol]} {urls[protocol]}",
                           _chain_identifier(reader, settings.sui_network, identifiers, protocol))
        chain = readers[settings.sui_protocol]
        await _attempt(report, f"MEMWAL_PACKAGE_ID {settings.package_id}", _original_package(chain, settings.package_id))
        await _attempt(report, f"MEMWAL_REGISTRY_ID {settings.registry_id}", _exists(chain, settings.registry_id))
        await _attempt(report, f"WALRUS_PACKAGE_ID {settings.walrus_package_id}", _exists(chain, settings.walrus_package_id))
    finally:
        for reader in readers.values():
            await reader.aclose()


async def _attempt(report: Report, what: str, check: Callable[[], Awaitable[str]]) -> None:
    await report.attempt(what, check, failed=(ChainError,), unreachable=(ChainUnavailable, httpx.HTTPError))


def _chain_identifier(reader: ChainReader, network: str, seen: dict[str, str], protocol: str) -> Callable[[], Awaitable[str]]:
    async def check() -> str:
        identifier = await reader.chain_identifier()
        preset = preset_for(network)
        if preset is not None and identifier != preset.chain_identifier:
            raise CheckFailed(f"chain {identifier}, but SUI_NETWORK={network} is chain {preset.chain_identifier}")
        others = {value for value in seen.values() if value != identifier}
        if others:
            raise CheckFailed(f"chain {identifier}, but {', '.join(sorted(seen))} answered chain {others.pop()}")
        seen[protocol] = identifier
        return f"chain {identifier}" + (f" ({network})" if preset is not None else "")
    return check


def _original_package(chain: ChainReader, package_id: str) -> Callable[[], Awaitable[str]]:
    async def check() -> str:
        version = await chain.object_version(package_id)
        if version is None:
            raise CheckFailed("no such object")
        if version != 1:
            raise CheckFailed(f"object at version {version}: not a package's original id (version 1)")
        return "package, version 1"
    return check


def _exists(chain: ChainReader, object_id: str) -> Callable[[], Awaitable[str]]:
    async def check() -> str:
        version = await chain.object_version(object_id)
        if version is None:
            raise CheckFailed("no such object")
        return f"exists (version {version})"
    return check


async def run_sidecar_check(env: Mapping[str, str], settings: Settings, out: TextIO, *, offline: bool,
                            skip: list[str]) -> ExitStatus:
    """``python -m sidecar check`` with the environment the relayer would start its sidecar with."""
    socket = settings.sidecar_socket or os.path.join(settings.data_dir, "sidecar.sock")
    child_env = {**env, "SIDECAR_SOCKET": socket, "SIDECAR_AUTH_TOKEN": settings.sidecar_auth_token.reveal() or _PLACEHOLDER_TOKEN}
    arguments = ["-m", "sidecar", "check", "--skip", ",".join(skip), *(["--offline"] if offline else [])]
    process = await asyncio.create_subprocess_exec(sys.executable, *arguments, env=child_env,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        output, _ = await asyncio.wait_for(process.communicate(), SIDECAR_CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()
        print(f"sidecar check: no answer within {SIDECAR_CHECK_TIMEOUT_SECONDS:g} s", file=out, flush=True)
        return 3
    out.write(output.decode(errors="replace"))
    out.flush()
    return process.returncode if process.returncode in (0, 1, 2, 3) else 2


async def check(env: Mapping[str, str], out: TextIO, *, offline: bool = False) -> ExitStatus:
    try:
        settings = Settings.from_environ(env)
        settings.validate_sui()
    except SettingsError as exc:
        print(f"configuration error: {exc}", file=out, flush=True)
        return 2
    report = Report(out)
    report.line(f"configuration (SUI_NETWORK={settings.sui_network}, SUI_PROTOCOL={settings.sui_protocol})")
    shown = print_settings(report, env, "relayer", settings)
    if not offline:
        report.line("  relayer checks against the network:")
        async with httpx.AsyncClient(timeout=settings.sui_timeout_seconds) as http:
            await check_chain(report, settings, http)
        report.summary("relayer")
    sidecar = await run_sidecar_check(env, settings, out, offline=offline, skip=shown)
    return worst(report.exit_status, sidecar)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m relayer check",
        description="Print the effective configuration (secrets redacted) and check it against the network: "
        "chain, package and registry ids, then (python -m sidecar check) Seal key servers, server wallets and "
        "Walrus endpoints. Exit 0 ok, 1 a check failed, 2 invalid configuration, 3 something unreachable.",
    )
    parser.add_argument("--offline", action="store_true", help="print the configuration only")
    arguments = parser.parse_args(argv)
    return asyncio.run(check(dict(os.environ), sys.stdout, offline=arguments.offline))
