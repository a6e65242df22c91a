"""Localnet stand-in for a Seal committee aggregator: t-of-n members behind one ``/v1/fetch_key``.

Behaves as Seal's ``crates/key-server/src/aggregator/server.rs``: (1) the client must name its SDK
(``Client-Sdk-Type`` typescript/rust/python, else ``InvalidSDKType``); (2) the PTB must be a valid
``seal_approve`` batch, which fixes the expected full ids; (3) the request goes to every member as
``Client-Sdk-Type: aggregator``; (4) each member's answer must carry ``X-KeyServer-Version``, exactly the
expected ids, and encrypted shares that verify against that member's on-chain partial key; (5) the first
t verified answers are combined inside the ElGamal ciphertexts (``sealcrypto.committee``), so the
aggregator never holds a user key; (6) short of t, the members' most common error is returned.
``GET /v1/service`` is unsupported (400), as upstream. Members are read from the committee's on-chain
``KeyServerV2`` record on every request, so a rotation takes effect at once.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from chain.address import normalize_address
from localnet.seal_http import (
    KEY_SERVER_VERSION,
    Refusal,
    check_aggregator_sdk_headers,
    error_response,
    json_response,
    parse_body,
    parse_semver,
    read_body,
)
from sealcrypto.committee import aggregate_encrypted_shares, verify_encrypted_share
from sealcrypto.errors import InvalidKey, InvalidTransaction
from sealcrypto.seal_approve import parse_programmable_transaction, validate_seal_approve

MEMBER_TIMEOUT_SECONDS = 8.0  # upstream's key_server_timeout_secs default
MAX_MEMBER_RESPONSE_BYTES = 1024 * 1024
MINIMUM_KEY_SERVER_VERSION = (0, 6, 2)  # upstream's key_server_version_requirement default


@dataclass(frozen=True)
class CommitteeMember:
    party_id: int
    url: str
    partial_public_key: bytes


@dataclass(frozen=True)
class Committee:
    threshold: int
    members: tuple[CommitteeMember, ...]


CommitteeLookup = Callable[[], Awaitable[Committee]]


def build_seal_aggregator_app(committee: CommitteeLookup, package_ids: Mapping[str, str], *,
                              member_timeout_seconds: float = MEMBER_TIMEOUT_SECONDS) -> Starlette:
    """``package_ids`` maps a PTB's package to its original id (the identity namespace)."""
    packages = {normalize_address(key): normalize_address(value) for key, value in package_ids.items()}
    state: dict[str, httpx.AsyncClient] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with httpx.AsyncClient() as http:
            state["http"] = http
            yield

    async def fetch_key(request: Request) -> Response:
        try:
            check_aggregator_sdk_headers(request)
            raw = await read_body(request)
            body = parse_body(raw)
            expected = _expected_full_ids(body, packages)
            current = await committee()
            keys = await _fan_out(state["http"], current, raw, body, expected, request.headers.get("request-id", ""),
                                  member_timeout_seconds)
        except Refusal as refusal:
            return error_response(refusal)
        return json_response(200, {"decryption_keys": keys})

    async def service(request: Request) -> Response:
        return PlainTextResponse("Unsupported", status_code=400)

    return Starlette(routes=[Route("/v1/fetch_key", fetch_key, methods=["POST"]),
                             Route("/v1/service", service, methods=["GET"])], lifespan=lifespan)


def _expected_full_ids(body: Mapping[str, Any], packages: Mapping[str, str]) -> list[bytes]:
    ptb_text = body.get("ptb")
    if not isinstance(ptb_text, str):
        raise Refusal(403, "InvalidParameter", "ptb is required")
    try:
        calls = validate_seal_approve(parse_programmable_transaction(base64.b64decode(ptb_text, validate=True)))
    except (binascii.Error, ValueError, InvalidTransaction) as exc:
        raise Refusal(403, "InvalidPTB", str(exc)[:200]) from None
    original = packages.get(normalize_address(calls.package))
    if original is None:
        raise Refusal(403, "InvalidPackage", "package is not served by this committee")
    expected = list(dict.fromkeys(bytes.fromhex(original[2:]) + inner_id for inner_id, _ in calls.calls))
    if not expected:
        raise Refusal(403, "InvalidPTB", "Empty key ids")
    return expected


async def _fan_out(http: httpx.AsyncClient, committee: Committee, raw: bytes, body: Mapping[str, Any],
                   expected: list[bytes], request_id: str, timeout: float) -> list[dict[str, Any]]:
    verification_key = body.get("enc_verification_key")
    try:
        verification_key_bytes = base64.b64decode(verification_key, validate=True) if isinstance(verification_key, str) else b""
    except (binascii.Error, ValueError):
        raise Refusal(403, "InvalidParameter", "enc_verification_key is not base64") from None
    tasks = {asyncio.ensure_future(_ask_member(http, member, raw, expected, verification_key_bytes, request_id, timeout)): member
             for member in committee.members}
    answers: list[tuple[int, dict[bytes, tuple[bytes, bytes]]]] = []
    errors: list[Refusal] = []
    try:
        for finished in asyncio.as_completed(tasks):
            try:
                answers.append(await finished)
            except Refusal as refusal:
                errors.append(refusal)
            if len(answers) >= committee.threshold:
                break
            if len(tasks) - len(errors) < committee.threshold:
                break  # the threshold can no longer be reached
    finally:
        for task in tasks:
            task.cancel()
    if len(answers) < committee.threshold:
        if not errors:
            raise Refusal(503, "Failure", f"Insufficient responses: got {len(answers)}, need {committee.threshold}")
        majority_kind, _ = Counter(error.kind for error in errors).most_common(1)[0]
        raise next(error for error in errors if error.kind == majority_kind)
    chosen = answers[: committee.threshold]
    aggregated = []
    for full_id in expected:
        shares = [(party_id, keys[full_id]) for party_id, keys in chosen]
        c0, c1 = await asyncio.to_thread(aggregate_encrypted_shares, committee.threshold, shares)
        aggregated.append({"id": list(full_id),
                           "encrypted_key": [base64.b64encode(c0).decode("ascii"), base64.b64encode(c1).decode("ascii")]})
    return aggregated


async def _ask_member(http: httpx.AsyncClient, member: CommitteeMember, raw: bytes, expected: list[bytes],
                      verification_key: bytes, request_id: str, timeout: float) -> tuple[int, dict[bytes, tuple[bytes, bytes]]]:
    headers = {"Client-Sdk-Type": "aggregator", "Client-Sdk-Version": KEY_SERVER_VERSION,
               "Content-Type": "application/json", "Request-Id": request_id}
    try:
        response = await http.post(member.url.rstrip("/") + "/v1/fetch_key", content=raw, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        raise Refusal(503, "Failure", f"party {member.party_id}: {type(exc).__name__}") from None
    if len(response.content) > MAX_MEMBER_RESPONSE_BYTES:
        raise Refusal(503, "Failure", f"party {member.party_id}: response too large")
    if response.status_code != 200:
        raise _relayed(response, member)
    version = response.headers.get("x-keyserver-version")
    try:
        if version is None or parse_semver(version) < MINIMUM_KEY_SERVER_VERSION:
            raise Refusal(503, "Failure", f"party {member.party_id}: key server version {version} is not supported")
        entries = response.json()["decryption_keys"]
        keys: dict[bytes, tuple[bytes, bytes]] = {}
        for entry in entries:
            c0, c1 = (base64.b64decode(part, validate=True) for part in entry["encrypted_key"])
            keys[bytes(entry["id"])] = (c0, c1)
    except (KeyError, TypeError, ValueError, binascii.Error):
        raise Refusal(503, "Failure", f"party {member.party_id}: malformed response") from None
    if len(entries) != len(expected) or set(keys) != set(expected):
        raise Refusal(503, "Failure", f"party {member.party_id} returned other key ids than expected")
    for full_id, ciphertext in keys.items():
        try:
            valid = await asyncio.to_thread(verify_encrypted_share, ciphertext, verification_key,
                                            member.partial_public_key, full_id)
        except InvalidKey:
            valid = False
        if not valid:
            raise Refusal(503, "Failure", f"verification failed for party {member.party_id}")
    return member.party_id, keys


def _relayed(response: httpx.Response, member: CommitteeMember) -> Refusal:
    """A member's own ``{error, message}`` is passed on; anything else is a ``Failure``."""
    try:
        body = response.json()
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            return Refusal(response.status_code, body["error"][:64], str(body.get("message", ""))[:256])
    except ValueError:
        pass
    return Refusal(503, "Failure", f"HTTP {response.status_code} from party {member.party_id}")


def committee_lookup_from(read: Callable[[], Committee]) -> CommitteeLookup:
    async def lookup() -> Committee:
        return read()

    return lookup
