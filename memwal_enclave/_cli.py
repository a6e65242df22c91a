"""``memwal-enclave``: the client package's command line (the auditor commands of ``python -m attestation``).

    memwal-enclave verify URL [--pcrs pcrs.json ...] [--manifest manifest.toml | --config-hash HEX ...]
    memwal-enclave config-hash manifest.toml

Both print every check, and say NOT CHECKED for whatever was not given to check against.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from attestation._cli import add_enclave_arguments, run  # the same code as `python -m attestation`; one copy

PROG = "memwal-enclave"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Check a memwal-enclave before trusting it: what it attests (image measurements, configuration "
        "hash, keys) against what its operator published.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    verify = commands.add_parser(
        "verify",
        help="attest a live enclave and print what it attests",
        description="Connect over TLS, challenge the enclave with a fresh nonce, verify its AWS Nitro attestation "
        "document, the binding of the TLS key and a signed response; print the PCRs and the configuration hash it "
        "reports, and NOT CHECKED for anything not given to check against.",
    )
    add_enclave_arguments(verify, required=False)
    config_hash = commands.add_parser(
        "config-hash",
        help="print a manifest's canonical configuration JSON and its SHA-384",
        description="What an enclave started with this manifest receives and attests (its SHA-384 and PCR16).",
    )
    config_hash.add_argument("manifest", type=Path, help="the appliance manifest (TOML)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    if arguments.command == "verify":
        arguments.command = "verify-url"
    return run(arguments)


if __name__ == "__main__":
    sys.exit(main())
