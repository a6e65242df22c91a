"""Command line: ``python -m attestation verify FILE``, ``config-hash MANIFEST``, ``verify-url URL``, ``provision URL``.

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

import httpx

from manifest import ManifestError, load_manifest

from .binding import EnclavePolicy, configuration_pcr
from .client import AttestedClient, AttestedEnclave, provision_secrets
from .errors import AttestationError
from .measurements import load_expected_pcrs
from .policy import AllOf, Policy, UnsafeAllowDebugMode, UnsafeNoOp
from .provisioning import load_secrets_file
from .trust import TrustRoot
from .verifier import DEFAULT_MAX_AGE, Verifier

MAX_INPUT_FILE_SIZE = 64 * 1024


ENCLAVE_COMMANDS = ("verify-url", "provision")
REPORTED_PCRS = (0, 1, 2, 3, 4, 8, 16)


def build_parser(prog: str = "python -m attestation") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="AWS Nitro attestation tools for memwal-enclave: verify documents and live enclaves, "
        "recompute a configuration hash, provision secrets.",
    )
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
    config_hash = commands.add_parser(
        "config-hash",
        help="print a manifest's canonical configuration JSON and its SHA-384 (what the enclave attests)",
        description="Recompute, from the manifest an operator published, exactly what the enclave receives "
        "(its canonical configuration JSON, [host] excluded), the SHA-384 it carries in every attestation "
        "document's user_data, and the PCR16 value that commits to it.",
    )
    config_hash.add_argument("manifest", type=Path, help="the appliance manifest (TOML)")
    for name, text in (
        ("verify-url", "connect to a memwal-enclave over TLS, challenge it, verify it and print what it attests"),
        ("provision", "verify a memwal-enclave like verify-url, then seal secrets to it and POST /provision"),
    ):
        command = commands.add_parser(name, help=text, description=text + ". Prints each check.")
        add_enclave_arguments(command, required=name == "provision")
        if name == "provision":
            command.add_argument("--secrets-file", type=Path, required=True, help="JSON object or NAME=value lines")
            command.add_argument("--wait", type=float, default=120.0, metavar="SECONDS",
                                 help="wait this long for the relayer to become ready [120]")
    return parser


def add_enclave_arguments(command: argparse.ArgumentParser, *, required: bool) -> None:
    """URL, the published measurements and configuration, the trust root (shared with memwal-enclave verify)."""
    unchecked = "" if required else "; without it the measurements are NOT CHECKED"
    command.add_argument("url", help="https://host:port of the enclave")
    command.add_argument("--pcrs", type=Path, action="append", default=[], required=required, metavar="FILE",
                         help="published measurements (pcrs.json); repeat to accept several during a rollout" + unchecked)
    command.add_argument("--config-hash", action="append", default=[], metavar="HEX",
                         help="published SHA-384 of the configuration; repeatable")
    command.add_argument("--manifest", type=Path, action="append", default=[], metavar="FILE",
                         help="published manifest: its configuration hash is recomputed (config-hash); repeatable")
    command.add_argument("--test-root", type=Path, metavar="PEM", help="UNSAFE: trust this test root instead of AWS")


def main(argv: Sequence[str] | None = None, *, prog: str = "python -m attestation") -> int:
    arguments = build_parser(prog).parse_args(argv)
    return run(arguments)


def run(arguments: argparse.Namespace) -> int:
    """Run a parsed command; errors become one ``error:`` line on stderr and exit status 1."""
    try:
        if arguments.command in ENCLAVE_COMMANDS:
            return asyncio.run(_enclave_command(arguments))
        if arguments.command == "config-hash":
            return _config_hash(arguments)
        return _verify(arguments)
    except AttestationError as error:
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
    except ManifestError as error:
        print(f"error: {error}", file=sys.stderr)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
    except httpx.HTTPError as error:
        print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
    return 1


def _config_hash(arguments: argparse.Namespace) -> int:
    document = load_manifest(arguments.manifest).enclave
    digest = document.digest()
    print("canonical configuration JSON (what the enclave receives; [host] is not part of it):")
    print(document.canonical_json().decode("ascii"))
    print(f"sha384  {digest.hex()}")
    print(f"PCR16   {configuration_pcr(digest).hex()}   (SHA384(48 zero bytes ‖ sha384): the enclave's commitment)")
    return 0


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
        print("policy: no --pcrs given, measurements NOT CHECKED")
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


def enclave_policy(arguments: argparse.Namespace) -> EnclavePolicy:
    """The published measurements and configuration given on the command line; says what is NOT CHECKED."""
    trust_root = _trust_root(arguments)
    policy = EnclavePolicy.published(
        pcrs=arguments.pcrs, configuration_hashes=arguments.config_hash, manifests=arguments.manifest, trust_root=trust_root
    )
    if policy.checks_measurements:
        sources = ", ".join(str(path) for path in arguments.pcrs)
        print(f"policy: measurements must match one of {len(policy.measurements)} published set(s) ({sources})")
    else:
        print("policy: measurements NOT CHECKED (no --pcrs): any enclave image signed under the root is accepted")
    if policy.checks_configuration:
        print("policy: configuration sha384 must be one of " + ", ".join(h.hex() for h in policy.configuration_hashes))
    else:
        print("policy: configuration NOT CHECKED (no --config-hash or --manifest)")
    print("policy: debug-mode enclaves rejected")
    return policy


async def _enclave_command(arguments: argparse.Namespace) -> int:
    """verify-url / provision: attest the live enclave (attestation/client.py), then maybe provision it."""
    secrets = None
    if arguments.command == "provision":
        with arguments.secrets_file.open("rb") as file:
            secrets = load_secrets_file(file.read(64 * 1024 + 1))
        print(f"secrets: {', '.join(sorted(secrets))} (values not shown)")
    policy = enclave_policy(arguments)
    if secrets is not None:
        policy.require_complete()  # secrets go only to an enclave whose image and configuration are both known
    counter = iter(range(1, 100))

    def observer(line: str) -> None:
        print(f"  ({next(counter)}) ok  {line}")

    def now() -> datetime:
        return datetime.now(UTC)

    async with AttestedClient.connect(arguments.url, policy=policy, now=now, observer=observer) as session:
        enclave = session.enclave
        health = await session.http.get("/health")
        observer(f"signed response: GET /health {health.status_code}, signature verifies")
        _report(enclave, policy)
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


def _report(enclave: AttestedEnclave, policy: EnclavePolicy) -> None:
    """What the enclave attested, and for each part whether it was checked against something published."""
    document = enclave.document
    print("received")
    print(f"  module_id                   {document.module_id}")
    print(f"  timestamp                   {document.timestamp.isoformat()}")
    for index in REPORTED_PCRS:
        value = document.pcrs.get(index)
        print(f"  PCR{index:<25}{'(absent)' if value is None else value.hex()}")
    print(f"  configuration sha384        {enclave.binding.configuration_sha384.hex()}")
    print(f"  identity key (Ed25519)      {enclave.identity_public_key.hex()}")
    print(f"  provisioning key (X25519)   {enclave.binding.provisioning_public_key.hex()}")
    print(f"  TLS SPKI sha256             {enclave.binding.tls_spki_sha256.hex()}")
    root = "AWS Nitro root G1" if policy.trust_root.is_aws else "UNTRUSTED TEST ROOT"
    print("checks")
    print(f"  certificate chain           ok ({root})")
    print("  signature, age, nonce       ok")
    print("  debug mode                  ok (PCR0-2 not zero)")
    print(f"  measurements                {'ok (a published set)' if policy.checks_measurements else 'NOT CHECKED'}")
    print(f"  configuration               {'ok (a published hash)' if policy.checks_configuration else 'NOT CHECKED'}")
    print("  PCR16 commitment            ok (commits to the configuration sha384 above)")
    print("  TLS channel binding         ok")
    print("  signed responses            ok")
    verdict = policy.checks_measurements and policy.checks_configuration and policy.trust_root.is_aws
    print("verified" if verdict else "verified, but NOT everything was checked (see above)")
