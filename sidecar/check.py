"""``python -m sidecar check``: the sidecar's part of ``python -m relayer check`` (relayer/check.py runs it).

Prints the sidecar's settings (``--skip`` those the relayer already printed), then, unless ``--offline``,
checks what only the sidecar knows against the network:

- every key server in SEAL_SERVER_CONFIGS and SEAL_LEGACY_DECRYPT_KEY_SERVERS (``SealService.verify_server``:
  the on-chain V1/V2 record, an independent server's proof of possession, a committee's key consistency and
  its aggregator);
- each server wallet owns gas coins (addresses printed, keys never);
- the Walrus publisher and aggregators answer ``GET /v1/api``.

Exit status as ``memwal_common.config_report``: 0 ok, 1 failed, 2 invalid configuration, 3 unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import TextIO

import httpx

from chain.backends import make_chain_reader
from chain.errors import ChainError, ChainUnavailable
from chain.reader import ChainReader, CommitteeServer, KeyServerInfo
from memwal_common.config_report import CheckFailed, ExitStatus, Report, print_settings
from memwal_common.environment import SettingsError
from sidecar._keys import WalletPool
from sidecar.errors import UpstreamUnavailable
from sidecar.seal_service import KeyServerMisconfigured, SealService
from sidecar.settings import SidecarSettings

# Set by the relayer for its sidecar, not by an operator: not printed.
_SET_BY_THE_RELAYER = {"SIDECAR_SOCKET", "SIDECAR_AUTH_TOKEN"}
# KeyServerMisconfigured is an UpstreamUnavailable: it is listed as a failure first.
_FAILED = (KeyServerMisconfigured, ChainError)
_UNREACHABLE = (ChainUnavailable, UpstreamUnavailable, httpx.HTTPError)


def describe_key_server(info: KeyServerInfo) -> str:
    if isinstance(info.server_type, CommitteeServer):
        committee = info.server_type
        kind = f"committee {committee.threshold}-of-{len(committee.members)}, key consistent with its members"
    else:
        kind = f"independent at {info.url}, proof of possession verified"
    return f"{info.name!r} KeyServerV{info.record_version}, {kind}"


async def check_network(report: Report, settings: SidecarSettings, http: httpx.AsyncClient) -> None:
    chain = make_chain_reader(settings.sui_url, protocol=settings.sui_protocol, http=http)
    try:
        seal = SealService(chain=chain, http=http, servers=settings.seal_servers, threshold=settings.seal_threshold,
                           package_id=settings.package_id, timeout_seconds=settings.seal_timeout_seconds,
                           legacy_decrypt_servers=settings.seal_legacy_decrypt_servers)
        for variable, servers in (("SEAL_SERVER_CONFIGS", settings.seal_servers),
                                  ("SEAL_LEGACY_DECRYPT_KEY_SERVERS", settings.seal_legacy_decrypt_servers)):
            for server in servers:
                await _attempt(report, f"{variable} {server.object_id}", _key_server(seal, server.object_id))
        wallets = WalletPool(list(settings.server_keys))
        for index, address in enumerate(wallets.addresses):
            await _attempt(report, f"server wallet {index} {address}", _gas(chain, address))
        for variable, url in (("WALRUS_PUBLISHER_URL", settings.walrus_publisher_url),
                              *(("WALRUS_AGGREGATOR_URLS", url) for url in settings.walrus_aggregator_urls)):
            await _attempt(report, f"{variable} {url}", _walrus_api(http, url))
    finally:
        await chain.aclose()


async def _attempt(report: Report, what: str, check: Callable[[], Awaitable[str]]) -> None:
    await report.attempt(what, check, failed=_FAILED, unreachable=_UNREACHABLE)


def _key_server(seal: SealService, object_id: str) -> Callable[[], Awaitable[str]]:
    async def check() -> str:
        return describe_key_server(await seal.verify_server(object_id))
    return check


def _gas(chain: ChainReader, address: str) -> Callable[[], Awaitable[str]]:
    async def check() -> str:
        coins = await chain.gas_coins(address)
        if not coins:
            raise CheckFailed("owns no gas coins: uploads cannot tag and transfer blobs")
        return f"{len(coins)} gas coin{'s' if len(coins) != 1 else ''}"
    return check


def _walrus_api(http: httpx.AsyncClient, url: str) -> Callable[[], Awaitable[str]]:
    async def check() -> str:
        response = await http.get(url.rstrip("/") + "/v1/api")
        if response.status_code != 200:
            raise CheckFailed(f"GET /v1/api answered {response.status_code}")
        return "answers GET /v1/api"
    return check


async def check(env: Mapping[str, str], out: TextIO, *, offline: bool = False, skip: Collection[str] = ()) -> ExitStatus:
    try:
        settings = SidecarSettings.from_environ(env)
    except SettingsError as exc:
        print(f"sidecar configuration error: {exc}", file=out, flush=True)
        return 2
    report = Report(out)
    print_settings(report, env, "sidecar", settings, skip={*skip, *_SET_BY_THE_RELAYER})
    if offline:
        return 0
    report.line("  sidecar checks against the network:")
    async with httpx.AsyncClient(timeout=settings.http_timeout_seconds) as http:
        await check_network(report, settings, http)
    report.summary("sidecar")
    return report.exit_status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sidecar check",
        description="The sidecar's settings (secrets redacted) and its checks against the network: Seal key "
        "servers, server wallets' gas, Walrus endpoints. Usually run by `python -m relayer check`.",
    )
    parser.add_argument("--offline", action="store_true", help="print the settings only")
    parser.add_argument("--skip", default="", metavar="VARS", help="CSV of variables not to print (shown already)")
    arguments = parser.parse_args(argv)
    skip = {name.strip() for name in arguments.skip.split(",") if name.strip()}
    return asyncio.run(check(dict(os.environ), sys.stdout, offline=arguments.offline, skip=skip))
