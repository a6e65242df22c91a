"""Command line: ``python -m attestation verify FILE [options]``.

Prints each verification step as it passes, then the document's contents.
A failure prints one ``error:`` line naming the step and exits with 1.
This is the only place in the package that reads the clock.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

from .errors import AttestationError
from .measurements import load_expected_pcrs
from .policy import AllOf, Policy, UnsafeAllowDebugMode, UnsafeNoOp
from .trust import TrustRoot
from .verifier import DEFAULT_MAX_AGE, Verifier

MAX_INPUT_FILE_SIZE = 64 * 1024


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m attestation", description="AWS Nitro attestation tools.")
    commands = parser.add_subparsers(dest="command", required=True)
    verify = commands.add_parser(
        "verify",
        help="verify an attestation document",
        description="Verify a Nitro attestation document (raw CBOR, hex or base64) step by step. "
        "By default it is checked live: at the current time, at most 5 minutes old.",
    )
    verify.add_argument("file", type=Path, help="the attestation document")
    verify.add_argument("--pcrs", type=Path, help="expected measurements JSON ({\"PCR0\": hex, ...})")
    when = verify.add_mutually_exclusive_group()
    when.add_argument("--archived", action="store_true", help="verify at the document's own signed timestamp")
    when.add_argument("--at", metavar="ISO", help="verify at this time (ISO 8601 with a timezone)")
    verify.add_argument("--nonce", metavar="HEX", help="the nonce the document must carry")
    verify.add_argument("--allow-debug", action="store_true", help="UNSAFE: accept debug-mode documents")
    verify.add_argument("--test-root", type=Path, metavar="PEM", help="UNSAFE: trust this test root instead of AWS")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    try:
        return _verify(arguments)
    except AttestationError as error:
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
    return 1


def _verify(arguments: argparse.Namespace) -> int:
    raw = _read_document(arguments.file)
    nonce = bytes.fromhex(arguments.nonce) if arguments.nonce else None
    if arguments.test_root:
        trust_root = TrustRoot.from_pem(arguments.test_root.read_bytes(), allow_untrusted_test_root=True)
        print(f"trust root: UNTRUSTED test root {trust_root.fingerprint.hex()}")
    else:
        trust_root = TrustRoot.aws()
        print(f"trust root: AWS Nitro Enclaves root G1 {trust_root.fingerprint.hex()}")
    policy = _policy(arguments)
    verifier = Verifier(trust_root=trust_root)
    step_counter = iter(range(1, 6))

    def observer(line: str) -> None:
        print(f"  ({next(step_counter)}) ok  {line}")

    if arguments.archived:
        print("time: the document's own signed timestamp (archived)")
        document = verifier.verify_archived(raw, policy=policy, nonce=nonce, observer=observer)
    elif arguments.at:
        at = datetime.fromisoformat(arguments.at)
        if at.tzinfo is None:
            raise ValueError("--at needs a timezone, e.g. 2026-01-03T20:41:07+00:00")
        print(f"time: {at.isoformat()}")
        document = verifier.verify(raw, policy=policy, at=at, nonce=nonce, max_age=None, observer=observer)
    else:
        now = datetime.now(timezone.utc)
        print(f"time: now ({now.isoformat()}), max age {DEFAULT_MAX_AGE}")
        document = verifier.verify_live(raw, policy=policy, nonce=nonce, now=now, observer=observer)
    print("verified")
    print(f"  module_id  {document.module_id}")
    print(f"  timestamp  {document.timestamp.isoformat()}")
    for index, value in document.pcrs.items():
        if index in (0, 1, 2, 3, 4, 8) or index >= 16:
            print(f"  PCR{index:<8}{value.hex()}")
    for name in ("public_key", "user_data", "nonce"):
        value = getattr(document, name)
        print(f"  {name:<10} {'(absent)' if value is None else value.hex()}")
    return 0


def _policy(arguments: argparse.Namespace) -> Policy:
    policies: list[Policy] = []
    if arguments.pcrs:
        expected = load_expected_pcrs(arguments.pcrs.read_bytes())
        policies.append(expected)
        print("policy: PCRs " + ", ".join(f"PCR{index}" for index in expected.expected))
    else:
        print("policy: no --pcrs given, measurements are NOT checked")
    if arguments.allow_debug:
        policies.append(UnsafeAllowDebugMode())
        print("policy: UNSAFE debug-mode documents allowed")
    if not policies:
        return UnsafeNoOp()
    return policies[0] if len(policies) == 1 else AllOf(policies)


def _read_document(path: Path) -> bytes:
    """Raw CBOR as-is; otherwise hex or base64 text, as enclaves often serve it."""
    with path.open("rb") as file:
        data = file.read(MAX_INPUT_FILE_SIZE + 1)
    if len(data) > MAX_INPUT_FILE_SIZE:
        raise ValueError(f"{path} is larger than {MAX_INPUT_FILE_SIZE} bytes")
    if data[:1] in (b"\x84", b"\xd2"):
        return data
    text = data.strip()
    try:
        return bytes.fromhex(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        pass
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{path} is neither CBOR, hex nor base64") from None
