"""Command line: ``python -m attestation verify FILE [options]``, ``verify-url URL``, ``provision URL``.

Prints each verification step as it passes, then the document's contents.
A failure prints one ``error:`` line naming the step and exits with 1.
This is the only place in the package that reads the clock.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from .client import AttestedClient, provision_secrets
from .errors import AttestationError
from .measurements import load_expected_pcrs
from .policy import AllOf, Policy, UnsafeAllowDebugMode, UnsafeNoOp
from .provisioning import load_secrets_file
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
    for name, text in (
        ("verify-url", "connect to a memwal-enclave over TLS, challenge it and verify the channel binding"),
        ("provision", "verify a memwal-enclave like verify-url, then seal secrets to it and POST /provision"),
    ):
        command = commands.add_parser(name, help=text, description=text + ". Prints each check.")
        command.add_argument("url", help="https://host:port of the enclave")
        command.add_argument("--pcrs", type=Path, required=True, help="expected measurements JSON")
        command.add_argument("--config-hash", metavar="HEX", help="expected SHA-384 of the runtime configuration")
        command.add_argument("--test-root", type=Path, metavar="PEM", help="UNSAFE: trust this test root instead of AWS")
        if name == "provision":
            command.add_argument("--secrets-file", type=Path, required=True, help="JSON object or NAME=value lines")
            command.add_argument("--wait", type=float, default=120.0, metavar="SECONDS",
                                 help="wait this long for the relayer to become ready [120]")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    try:
        if arguments.command in ("verify-url", "provision"):
            return asyncio.run(_enclave_command(arguments))
        return _verify(arguments)
    except AttestationError as error:
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
    except Exception as error:  # enclave errors (signatures) and httpx transport errors
        if type(error).__module__.split(".")[0] not in ("enclave", "httpx", "ssl"):
            raise
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
    return 1


def _trust_root(arguments: argparse.Namespace) -> TrustRoot:
    """The pinned AWS root, or a test root only when --test-root names one; says which it is."""
    if arguments.test_root:
        trust_root = TrustRoot.from_pem(arguments.test_root.read_bytes(), allow_untrusted_test_root=True)
        print(f"trust root: UNTRUSTED test root {trust_root.fingerprint.hex()}")
    else:
        trust_root = TrustRoot.aws()
        print(f"trust root: AWS Nitro Enclaves root G1 {trust_root.fingerprint.hex()}")
    return trust_root


def _verify(arguments: argparse.Namespace) -> int:
    raw = _read_document(arguments.file)
    nonce = bytes.fromhex(arguments.nonce) if arguments.nonce else None
    trust_root = _trust_root(arguments)
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
        now = datetime.now(UTC)
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


async def _enclave_command(arguments: argparse.Namespace) -> int:
    """verify-url / provision: attest the live enclave (attestation/client.py), then maybe provision it."""
    secrets = None
    if arguments.command == "provision":
        with arguments.secrets_file.open("rb") as file:
            secrets = load_secrets_file(file.read(64 * 1024 + 1))
        print(f"secrets: {', '.join(sorted(secrets))} (values not shown)")
    expected = load_expected_pcrs(arguments.pcrs.read_bytes())
    print("policy: PCRs " + ", ".join(f"PCR{index}" for index in expected.expected) + ", debug mode rejected")
    config_hash = bytes.fromhex(arguments.config_hash) if arguments.config_hash else None
    trust_root = _trust_root(arguments)
    counter = iter(range(1, 100))

    def observer(line: str) -> None:
        print(f"  ({next(counter)}) ok  {line}")

    def now() -> datetime:
        return datetime.now(UTC)

    async with AttestedClient.connect(
        arguments.url, expected_pcrs=expected, trust_root=trust_root, now=now, config_hash=config_hash, observer=observer
    ) as session:
        enclave = session.enclave
        print("verified")
        print(f"  identity key (Ed25519)      {enclave.identity_public_key.hex()}")
        print(f"  provisioning key (X25519)   {enclave.binding.provisioning_public_key.hex()}")
        print(f"  TLS SPKI sha256             {enclave.binding.tls_spki_sha256.hex()}")
        print(f"  configuration sha384        {enclave.binding.configuration_sha384.hex()}")
        health = await session.http.get("/health")
        observer(f"signed response: GET /health {health.status_code}, signature verifies")
        if secrets is None:
            return 0
        response = await provision_secrets(session, secrets)
        if response.status_code != 202:
            print(f"error: POST /provision answered {response.status_code}: {response.text}", file=sys.stderr)
            return 1
        observer("provision: envelope sealed to the attested X25519 key, bound to this document, accepted")
        deadline = asyncio.get_running_loop().time() + arguments.wait
        while asyncio.get_running_loop().time() < deadline:
            state = (await session.http.get("/health")).json().get("enclave", {}).get("relayer")
            if state == "ready":
                observer("relayer: ready")
                return 0
            if state == "failed":
                print("error: the relayer failed to start (see the enclave's log)", file=sys.stderr)
                return 1
            await asyncio.sleep(0.5)
        print(f"error: the relayer was not ready within {arguments.wait:g} s", file=sys.stderr)
        return 1
