"""Localnet stand-in for a Seal key server (open mode), speaking the real HTTP protocol.

``POST /v1/fetch_key`` checks, in the order of Seal's ``server.rs``: (1) SDK headers; (2) body cap
and shape; (3) PTB rules; (4) package → original id; (5) certificate TTL and time window;
(6) the user's personal-message signature; (7) the session's request signature; (8) MemWal's
``seal_approve`` predicate with ``sender = certificate.user`` instead of a dry run; then answers
each call's id with an ElGamal-wrapped ``H1(pkg ‖ id)^msk``. ``GET /v1/service`` returns the PoP.
"""

from __future__ import annotations

import base64
import binascii
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeGuard

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from chain.address import is_address, normalize_address
from chain.errors import InvalidSignature
from chain.personal_message import verify_personal_message
from chain.programmable_transaction import Input, PureInput
from localnet.seal_http import (
    Refusal,
    check_key_server_sdk_headers,
    error_response,
    json_response,
    parse_body,
    read_body,
)
from localnet.seal_policy import AccountView, seal_approve_allows
from sealcrypto import bls
from sealcrypto.elgamal import elgamal_encrypt
from sealcrypto.errors import InvalidKey, InvalidTransaction
from sealcrypto.key_server_secret import KeyServerSecret
from sealcrypto.seal_approve import SealApproveRequest, parse_programmable_transaction, validate_seal_approve
from sealcrypto.session import Certificate, request_bytes, verify_request_signature

MAX_CERTIFICATE_TTL_MIN = 30
ED25519_SIGNATURE_BYTES = 64
ED25519_PUBLIC_KEY_BYTES = 32
MEMWAL_MODULE = "account"
MEMWAL_FUNCTION = "seal_approve"

AccountLookup = Callable[[str], Awaitable[AccountView | None]]


def build_seal_server_app(
    secret: KeyServerSecret,
    object_id: str,
    account_lookup: AccountLookup,
    *,
    clock: Callable[[], float] = time.time,
    fixed_policy: bool = True,
    package_ids: Mapping[str, str] | None = None,
    rng: Callable[[int], bytes] = os.urandom,
) -> Starlette:
    """A Starlette app for one key server. ``package_ids`` maps PTB package → original package id
    (served packages); ``None`` serves any package as its own original id."""
    service_id = normalize_address(object_id)
    packages = None if package_ids is None else {normalize_address(k): normalize_address(v) for k, v in package_ids.items()}
    proof_of_possession = base64.b64encode(secret.proof_of_possession(bytes.fromhex(service_id[2:]))).decode("ascii")

    async def fetch_key(request: Request) -> JSONResponse:
        try:
            check_key_server_sdk_headers(request)
            body = parse_body(await read_body(request))
            keys = await _answer(body)
        except Refusal as refusal:
            return error_response(refusal)
        return json_response(200, {"decryption_keys": keys})

    async def service(request: Request) -> JSONResponse:
        requested = request.query_params.get("service_id", "")
        if not is_address(requested) or normalize_address(requested) != service_id:
            return error_response(Refusal(400, "InvalidServiceId", "unknown service id"))
        return json_response(200, {"service_id": service_id, "pop": proof_of_possession})

    async def _answer(body: Mapping[str, Any]) -> list[dict[str, Any]]:
        ptb = _b64_field(body, "ptb")
        enc_key = _b64_field(body, "enc_key")
        enc_verification_key = _b64_field(body, "enc_verification_key")
        request_signature = _b64_field(body, "request_signature")
        certificate = _certificate(body.get("certificate"))
        try:
            parsed = parse_programmable_transaction(ptb)
            calls = validate_seal_approve(parsed)
        except InvalidTransaction as exc:
            raise Refusal(403, "InvalidPTB", str(exc)) from None
        original_package = _original_package(calls.package)
        if certificate.mvr_name is not None:
            raise Refusal(403, "InvalidMVRName", "MVR names are not resolvable on localnet")
        _check_certificate_window(certificate, int(clock() * 1000))
        try:
            signer = verify_personal_message(certificate.message(original_package), certificate.signature)
        except InvalidSignature:
            raise Refusal(403, "InvalidSignature", "invalid user signature") from None
        if signer != normalize_address(certificate.user):
            raise Refusal(403, "InvalidSignature", "signature is not by the certificate's user")
        signed = request_bytes(ptb, enc_key, enc_verification_key)
        if len(request_signature) != ED25519_SIGNATURE_BYTES or not verify_request_signature(
            certificate.session_vk, signed, request_signature
        ):
            raise Refusal(403, "InvalidSessionSignature", "invalid session key signature")
        try:
            bls.g1_from_bytes(enc_key)
            bls.g2_from_bytes(enc_verification_key)
        except InvalidKey:
            raise Refusal(403, "InvalidParameter", "invalid ElGamal keys") from None
        await _check_policy(calls, parsed.inputs, certificate.user)
        package_bytes = bytes.fromhex(original_package[2:])
        answers = []
        for inner_id, _ in calls.calls:
            full_id = package_bytes + inner_id
            c0, c1 = elgamal_encrypt(enc_key, secret.extract_point(full_id), rng)
            answers.append(
                {
                    "id": list(full_id),
                    "encrypted_key": [base64.b64encode(c0).decode("ascii"), base64.b64encode(c1).decode("ascii")],
                }
            )
        return answers

    def _original_package(package: str) -> str:
        if packages is None:
            return normalize_address(package)
        original = packages.get(normalize_address(package))
        if original is None:
            raise Refusal(403, "InvalidPackage", "package is not served by this key server")
        return original

    async def _check_policy(calls: SealApproveRequest, ptb_inputs: tuple[Input, ...], sender: str) -> None:
        for inner_id, call in calls.calls:
            if call.module != MEMWAL_MODULE or call.function != MEMWAL_FUNCTION or call.type_arguments:
                raise Refusal(403, "InvalidPTB", "function not found in the package")
            if len(call.arguments) != 2:
                raise Refusal(403, "NoAccess", "seal_approve takes (id, account)")
            account_input = ptb_inputs[call.arguments[1].index]
            if isinstance(account_input, PureInput):
                raise Refusal(403, "NoAccess", "the account argument is not an object")
            account = await account_lookup(account_input.object_id)
            if account is not None and normalize_address(account.account_id) != account_input.object_id:
                account = None
            if not seal_approve_allows(account, inner_id, sender, fixed_policy=fixed_policy):
                raise Refusal(403, "NoAccess", "user does not have access to one or more of the ids")

    return Starlette(
        routes=[
            Route("/v1/fetch_key", fetch_key, methods=["POST"]),
            Route("/v1/service", service, methods=["GET"]),
        ]
    )


def _b64_field(body: Mapping[str, Any], name: str) -> bytes:
    value = body.get(name)
    if not isinstance(value, str):
        raise Refusal(403, "InvalidParameter", f"{name} is required")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise Refusal(403, "InvalidParameter", f"{name} is not base64") from None


def _certificate(value: object) -> Certificate:
    if not isinstance(value, dict):
        raise Refusal(403, "InvalidParameter", "certificate is required")
    user, signature, mvr_name = value.get("user"), value.get("signature"), value.get("mvr_name")
    creation_time, ttl_min = value.get("creation_time"), value.get("ttl_min")
    if not isinstance(user, str) or not is_address(user) or not isinstance(signature, str) or len(signature) > 4096:
        raise Refusal(403, "InvalidCertificate", "certificate user or signature malformed")
    if not _is_count(creation_time) or not _is_count(ttl_min):
        raise Refusal(403, "InvalidCertificate", "certificate times malformed")
    if mvr_name is not None and not isinstance(mvr_name, str):
        raise Refusal(403, "InvalidCertificate", "mvr_name must be a string or null")
    session_vk = _b64_field(value, "session_vk")
    if len(session_vk) != ED25519_PUBLIC_KEY_BYTES:
        raise Refusal(403, "InvalidCertificate", "session_vk must be an Ed25519 public key")
    return Certificate(normalize_address(user), session_vk, creation_time, ttl_min, signature, mvr_name)


def _check_certificate_window(certificate: Certificate, now_ms: int) -> None:
    if certificate.ttl_min > MAX_CERTIFICATE_TTL_MIN:
        raise Refusal(403, "InvalidCertificate", "certificate ttl exceeds 30 minutes")
    expires_ms = certificate.creation_time + certificate.ttl_min * 60_000
    if certificate.creation_time > now_ms or expires_ms < now_ms:
        raise Refusal(403, "InvalidCertificate", "certificate is not valid at this time")


def _is_count(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
