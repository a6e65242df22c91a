"""``python -m localnet --state DIR``: run every localnet stand-in until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from localnet.runner import INFO_FILE, run_localnet
from memwal_common.signals import shutdown_on_signals

DESCRIPTION = """\
Start an offline MemWal localnet on loopback: Sui JSON-RPC and GraphQL, a Walrus publisher and two
aggregators, Seal key servers and an OpenAI-compatible stand-in, each its own HTTP server on a free port.
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
    parser.add_argument("--fixed-seal-policy", action="store_true",
                        help="key servers also check the id for delegates (MemWal issue #369 fixed); "
                             "default: upstream's behaviour")
    arguments = parser.parse_args(argv)
    if not 1 <= arguments.threshold <= arguments.key_servers:
        parser.error("need 1 <= --threshold <= --key-servers")
    return arguments


async def run(arguments: argparse.Namespace) -> None:
    stop = shutdown_on_signals()
    async with run_localnet(arguments.state, host=arguments.host, key_servers=arguments.key_servers,
                            threshold=arguments.threshold, fixed_seal_policy=arguments.fixed_seal_policy) as info:
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
