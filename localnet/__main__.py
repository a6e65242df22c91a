"""``python -m localnet --state DIR``: run every localnet stand-in until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from localnet.runner import INFO_FILE, LocalnetOptions, run_localnet
from memwal_common.signals import shutdown_on_signals

DESCRIPTION = """\
Start an offline MemWal localnet on loopback: Sui GraphQL, gRPC and (unless --no-jsonrpc) JSON-RPC, a
Walrus publisher and two aggregators, independent Seal key servers, a Seal committee behind its
aggregator, and an OpenAI-compatible stand-in, each its own server on a free port.
The first start publishes the MemWal package, creates the registry and a funded server wallet; later starts
reuse the state directory (ports may change). Connection details go to DIR/localnet.json (mode 0600: it
holds the server wallet key). Create accounts with: python -m localnet.cli create-account --state DIR
"""


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m localnet", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--state", required=True, type=Path, metavar="DIR",
                        help="state directory (chain state, blobs, keys, localnet.json); created if missing")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--key-servers", type=int, default=3, metavar="N",
                        help="number of Seal key servers (default: %(default)s)")
    parser.add_argument("--threshold", type=int, default=2, metavar="T",
                        help="Seal threshold written to localnet.json (default: %(default)s)")
    parser.add_argument("--legacy-seal-policy", dest="fixed_seal_policy", action="store_false",
                        help="key servers run seal_approve as before MemWal PR #371: any delegate gets keys for "
                             "any id (issue #369); default: the fixed rule")
    parser.add_argument("--committee-members", type=int, default=3, metavar="N",
                        help="members of the Seal committee behind the aggregator (default: %(default)s)")
    parser.add_argument("--committee-threshold", type=int, default=2, metavar="T",
                        help="members needed to answer for the committee, at least 2 (default: %(default)s)")
    parser.add_argument("--no-jsonrpc", action="store_true",
                        help="do not serve Sui JSON-RPC, as on a network that has switched it off")
    parser.add_argument("--indexing-lag-ms", type=int, default=0, metavar="MS",
                        help="GraphQL and gRPC reads trail execution by this much, as a real indexer does "
                             "(default: %(default)s)")
    parser.add_argument("--walrus-not-found-ms", type=int, default=0, metavar="MS",
                        help="aggregators answer 404 for this long after a blob is certified (default: %(default)s)")
    parser.add_argument("--server-wallets", type=int, default=1, metavar="N",
                        help="funded server wallets for the sidecar, each with its own gas coins; more wallets, "
                             "more remember transactions in flight (default: %(default)s)")
    parser.add_argument("--snapshot-every-transaction", action="store_true",
                        help="save the whole state after each transaction instead of appending to the journal, "
                             "as the localnet did before; for benchmarks that compare the two")
    arguments = parser.parse_args(argv)
    try:
        options(arguments).validate()
    except ValueError as error:
        parser.error(str(error))
    return arguments


def options(arguments: argparse.Namespace) -> LocalnetOptions:
    if arguments.indexing_lag_ms < 0 or arguments.walrus_not_found_ms < 0:
        raise ValueError("lags cannot be negative")
    return LocalnetOptions(
        host=arguments.host, key_servers=arguments.key_servers, threshold=arguments.threshold,
        committee_members=arguments.committee_members, committee_threshold=arguments.committee_threshold,
        server_wallets=arguments.server_wallets, snapshot_every_transaction=arguments.snapshot_every_transaction,
        fixed_seal_policy=arguments.fixed_seal_policy, jsonrpc=not arguments.no_jsonrpc,
        indexing_lag_seconds=arguments.indexing_lag_ms / 1000, walrus_not_found_seconds=arguments.walrus_not_found_ms / 1000,
    )


async def run(arguments: argparse.Namespace) -> None:
    stop = shutdown_on_signals()
    async with run_localnet(arguments.state, options(arguments)) as info:
        for name, url in info["servers"].items():
            print(f"{name:<22} {url}", flush=True)
        print(f"{'localnet.json':<22} {arguments.state / INFO_FILE}", flush=True)
        await stop.wait()
    print("localnet stopped", flush=True)


def main(argv: list[str] | None = None) -> int:
    asyncio.run(run(parse_arguments(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
