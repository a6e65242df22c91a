"""``python -m localnet.cli create-account --state DIR``: a fresh owner, MemWal account and delegate key.

Talks to the running localnet through its ``/_localnet/`` admin routes (``admin_url`` in localnet.json),
then prints what the official SDK needs. The printed keys are localnet throwaways, never real funds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
from nacl.signing import SigningKey

from chain.address import normalize_address, sui_address
from chain.keys import encode_sui_private_key
from localnet.errors import AdminRequestFailed, LocalnetError
from localnet.runner import read_localnet_info

DEFAULT_RELAYER_URL = "http://localhost:8000"
ADMIN_TIMEOUT_SECONDS = 10.0
MAX_ADMIN_RESPONSE_BYTES = 64 * 1024


@dataclasses.dataclass(frozen=True)
class CreatedAccount:
    account_id: str
    owner_address: str
    delegate_address: str
    delegate_public_key_hex: str
    label: str
    owner_private_key: str = dataclasses.field(repr=False)  # suiprivkey1…
    delegate_private_key_hex: str = dataclasses.field(repr=False)  # what MemWal.create(key=…) takes

    def sdk_snippet(self, server_url: str = DEFAULT_RELAYER_URL) -> str:
        return (
            "from memwal import MemWal\n\n"
            f"memwal = MemWal.create(key={self.delegate_private_key_hex!r}, account_id={self.account_id!r}, "
            f"server_url={server_url!r})\n"
        )

    def to_json(self) -> dict[str, str]:
        return dataclasses.asdict(self)


async def _admin_post(http: httpx.AsyncClient, url: str, body: Mapping[str, Any]) -> dict[str, Any]:
    try:
        response = await http.post(url, json=body, timeout=ADMIN_TIMEOUT_SECONDS)
    except httpx.HTTPError as error:
        raise AdminRequestFailed(f"the localnet did not answer at {url}: {error}") from error
    if len(response.content) > MAX_ADMIN_RESPONSE_BYTES:
        raise AdminRequestFailed("admin response too large", response.status_code)
    try:
        data = response.json()
    except ValueError:
        data = None
    if response.status_code != 200 or not isinstance(data, dict):
        raise AdminRequestFailed(f"{url} answered {response.status_code}: {response.text[:300]}", response.status_code)
    return data


async def create_account(info: Mapping[str, Any], label: str = "localnet", *, http: httpx.AsyncClient | None = None,
                         rng: Callable[[int], bytes] = os.urandom) -> CreatedAccount:
    """Create owner + account + delegate key on the localnet described by ``info`` (parsed localnet.json)."""
    owner_seed, delegate_seed = rng(32), rng(32)
    owner_address = sui_address(bytes(SigningKey(owner_seed).verify_key))
    delegate_public_key = bytes(SigningKey(delegate_seed).verify_key)
    base = str(info.get("admin_url") or info["sui_rpc_url"]).rstrip("/")  # older localnet.json files lack admin_url
    async with contextlib.AsyncExitStack() as stack:
        client = http if http is not None else await stack.enter_async_context(httpx.AsyncClient())
        created = await _admin_post(client, f"{base}/_localnet/accounts", {"owner": owner_address})
        account_id = created.get("accountId")
        if not isinstance(account_id, str):
            raise AdminRequestFailed("the account route did not return an accountId")
        account_id = normalize_address(account_id)
        await _admin_post(client, f"{base}/_localnet/accounts/{account_id}/delegates",
                          {"public_key": delegate_public_key.hex(), "label": label})
    return CreatedAccount(
        account_id=account_id, owner_address=owner_address, delegate_address=sui_address(delegate_public_key),
        delegate_public_key_hex=delegate_public_key.hex(), label=label,
        owner_private_key=encode_sui_private_key(owner_seed), delegate_private_key_hex=delegate_seed.hex())


def render(account: CreatedAccount, server_url: str) -> str:
    return "\n".join([
        f"account id            {account.account_id}",
        f"owner address         {account.owner_address}",
        f"owner private key     {account.owner_private_key}",
        f"delegate address      {account.delegate_address}",
        f"delegate private key  {account.delegate_private_key_hex}",
        f"delegate label        {account.label}",
        "",
        "# the official Python SDK:",
        account.sdk_snippet(server_url),
    ])


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m localnet.cli", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create-account", help="create an owner, a MemWal account and a delegate key")
    create.add_argument("--state", required=True, type=Path, metavar="DIR", help="the running localnet's state directory")
    create.add_argument("--label", default="localnet", help="delegate key label, at most 64 bytes (default: %(default)s)")
    create.add_argument("--server-url", default=DEFAULT_RELAYER_URL,
                        help="relayer URL for the printed SDK snippet (default: %(default)s)")
    create.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    arguments = parse_arguments(argv)
    try:
        account = asyncio.run(create_account(read_localnet_info(arguments.state), arguments.label))
    except LocalnetError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if arguments.json:
        print(json.dumps({**account.to_json(), "sdk_snippet": account.sdk_snippet(arguments.server_url)}, indent=2))
    else:
        print(render(account, arguments.server_url))
    return 0


if __name__ == "__main__":
    sys.exit(main())
