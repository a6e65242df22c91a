"""Client for Seal key servers' ``POST /v1/fetch_key``: what the sidecar uses to obtain user keys.

Servers are asked concurrently with one fresh ElGamal key pair per request; every returned key is
ElGamal-decrypted and checked with ``e(usk, g2) == e(H1(full_id), PK)`` (bad ones are dropped), and
the call returns as soon as the verified servers' weights reach the threshold.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import os
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import httpx

from sealcrypto import bls
from sealcrypto.decrypt import decrypt
from sealcrypto.elgamal import ElGamalKeyPair
from sealcrypto.encrypted_object import EncryptedObject
from sealcrypto.errors import InvalidKey, KeyServerError, SealError
from sealcrypto.key_server_secret import verify_proof_of_possession, verify_user_secret_key
from sealcrypto.session import SessionKey

CLIENT_SDK_TYPE = "python"
CLIENT_SDK_VERSION = "0.1.0"
MAX_RESPONSE_BYTES = 1024 * 1024
MAX_KEYS_PER_RESPONSE = 100
# Errors a retry cannot fix: the request itself or the caller's rights are wrong.
PERMANENT_KINDS = frozenset(
    {
        "NoAccess",
        "InvalidPTB",
        "InvalidPackage",
        "InvalidSignature",
        "InvalidSessionSignature",
        "InvalidCertificate",
        "InvalidParameter",
        "InvalidMVRName",
        "UnsupportedPackageId",
        "DeprecatedSDKVersion",
        "MissingRequiredHeader",
        "InvalidSDKVersion",
        "InvalidSDKType",  # an aggregator refuses clients that do not say which SDK they are
        "InvalidServiceId",  # the server is not the key server we asked for
    }
)


@dataclass(frozen=True)
class KeyServerEndpoint:
    object_id: str
    url: str
    public_key: bytes
    weight: int = 1

    @property
    def object_id_bytes(self) -> bytes:
        return bytes.fromhex(self.object_id.removeprefix("0x").rjust(64, "0"))


class KeyServerClient:
    def __init__(
        self,
        servers: Sequence[KeyServerEndpoint],
        threshold: int,
        http: httpx.AsyncClient,
        timeout_s: float = 10.0,
        *,
        rng: Callable[[int], bytes] = os.urandom,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not servers or not 1 <= threshold <= sum(server.weight for server in servers):
            raise ValueError("threshold must be between 1 and the total weight of the servers")
        self._servers = tuple(servers)
        self._threshold = threshold
        self._http = http
        self._timeout_s = timeout_s
        self._rng = rng
        self._clock = clock

    async def fetch_keys(
        self, ptb: bytes, session: SessionKey, full_ids: Sequence[bytes]
    ) -> dict[bytes, dict[bytes, bytes]]:
        """``{key-server object id (32 bytes): {full_id: usk (48 bytes)}}`` from enough servers.

        Raises ``KeyServerError`` when the threshold cannot be reached: permanent if any server
        refused for a permanent reason, transient otherwise.
        """
        session.check_fresh(self._clock)
        certificate = session.certificate().to_json()
        wanted = {bytes(full_id) for full_id in full_ids}
        tasks = {
            asyncio.ensure_future(self._fetch_one(server, ptb, session, certificate, wanted)): server
            for server in self._servers
        }
        results: dict[bytes, dict[bytes, bytes]] = {}
        failures: list[KeyServerError] = []
        weight = 0
        try:
            for finished in asyncio.as_completed(tasks):
                try:
                    server, keys = await finished
                except KeyServerError as error:
                    failures.append(error)
                    continue
                results[server.object_id_bytes] = keys
                weight += server.weight
                if weight >= self._threshold:
                    return results
        finally:
            for task in tasks:
                task.cancel()
        permanent = [failure for failure in failures if failure.permanent]
        chosen = permanent[0] if permanent else (failures[0] if failures else None)
        if chosen is None:
            raise KeyServerError(0, "NotEnoughKeys", False, "threshold not reached")
        raise KeyServerError(chosen.status, chosen.kind, chosen.permanent, "threshold not reached")

    async def _fetch_one(
        self,
        server: KeyServerEndpoint,
        ptb: bytes,
        session: SessionKey,
        certificate: Mapping[str, object],
        wanted: set[bytes],
    ) -> tuple[KeyServerEndpoint, dict[bytes, bytes]]:
        keypair = ElGamalKeyPair.generate(self._rng)
        body = {
            "ptb": base64.b64encode(ptb).decode("ascii"),
            "enc_key": base64.b64encode(keypair.public_key).decode("ascii"),
            "enc_verification_key": base64.b64encode(keypair.verification_key).decode("ascii"),
            "request_signature": session.sign_request(ptb, keypair.public_key, keypair.verification_key),
            "certificate": dict(certificate),
        }
        headers = {
            "Client-Sdk-Type": CLIENT_SDK_TYPE,
            "Client-Sdk-Version": CLIENT_SDK_VERSION,
            "Request-Id": str(uuid.UUID(bytes=self._rng(16), version=4)),
        }
        try:
            response = await self._http.post(
                server.url.rstrip("/") + "/v1/fetch_key", json=body, headers=headers, timeout=self._timeout_s
            )
        except httpx.TimeoutException:
            raise KeyServerError(0, "Timeout", False, server.object_id) from None
        except httpx.HTTPError:
            raise KeyServerError(0, "Unavailable", False, server.object_id) from None
        if len(response.content) > MAX_RESPONSE_BYTES:
            raise KeyServerError(response.status_code, "ResponseTooLarge", False)
        if response.status_code != 200:
            raise _error_from_response(response)
        keys = self._verified_keys(server, keypair, response, wanted)
        if not wanted <= keys.keys():
            raise KeyServerError(200, "MissingKeys", False, server.object_id)
        return server, keys

    def _verified_keys(
        self, server: KeyServerEndpoint, keypair: ElGamalKeyPair, response: httpx.Response, wanted: set[bytes]
    ) -> dict[bytes, bytes]:
        try:
            entries = response.json()["decryption_keys"]
            if not isinstance(entries, list) or len(entries) > MAX_KEYS_PER_RESPONSE:
                raise TypeError("decryption_keys must be a short list")
            keys: dict[bytes, bytes] = {}
            for entry in entries:
                full_id = bytes(entry["id"])
                if full_id not in wanted:
                    continue
                c0, c1 = (base64.b64decode(part, validate=True) for part in entry["encrypted_key"])
                usk = keypair.decrypt((c0, c1))
                # A server that answers with a wrong key is treated as if it had not answered.
                if verify_user_secret_key(usk, full_id, server.public_key):
                    keys[full_id] = bls.g1_to_bytes(usk)
            return keys
        except (KeyError, TypeError, ValueError, binascii.Error, InvalidKey):
            raise KeyServerError(200, "MalformedResponse", False, server.object_id) from None


async def verify_possession(
    http: httpx.AsyncClient, endpoint: KeyServerEndpoint, timeout_s: float = 10.0
) -> bool:
    """Ask an independent server for its proof of possession (``GET /v1/service``) and check it against
    the public key read from chain: true only if the server holds the master key for that key and object.

    Raises ``KeyServerError`` (transient) when the server cannot be asked; a refusal or a bad proof is False.
    """
    try:
        response = await http.get(
            endpoint.url.rstrip("/") + "/v1/service",
            params={"service_id": endpoint.object_id},
            headers={"Client-Sdk-Type": CLIENT_SDK_TYPE, "Client-Sdk-Version": CLIENT_SDK_VERSION},
            timeout=timeout_s,
        )
    except httpx.HTTPError:
        raise KeyServerError(0, "Unavailable", False, endpoint.object_id) from None
    if response.status_code == 429 or response.status_code >= 500:
        raise KeyServerError(response.status_code, "Unavailable", False, endpoint.object_id)
    if response.status_code != 200 or len(response.content) > MAX_RESPONSE_BYTES:
        return False
    try:
        body = response.json()
        pop = base64.b64decode(body["pop"], validate=True)
        same_service = bytes.fromhex(str(body["service_id"]).removeprefix("0x").rjust(64, "0")) == endpoint.object_id_bytes
    except (KeyError, TypeError, ValueError, binascii.Error):
        return False
    return same_service and verify_proof_of_possession(pop, endpoint.public_key, endpoint.object_id_bytes)


def decrypt_objects(
    objects: Sequence[EncryptedObject], keys: Mapping[bytes, Mapping[bytes, bytes]]
) -> list[bytes | SealError]:
    """Decrypt each object with the keys ``fetch_keys`` returned; errors are returned in place."""
    out: list[bytes | SealError] = []
    for obj in objects:
        usks = {object_id: per_id[obj.full_id] for object_id, per_id in keys.items() if obj.full_id in per_id}
        try:
            out.append(decrypt(obj, usks))
        except SealError as error:
            out.append(error)
    return out


def _error_from_response(response: httpx.Response) -> KeyServerError:
    status = response.status_code
    kind, message = "HttpError", ""
    try:
        body = response.json()
        if isinstance(body, dict):
            kind = str(body.get("error", kind))[:64]
            message = str(body.get("message", ""))[:256]
    except ValueError:
        pass
    permanent = kind in PERMANENT_KINDS and status not in (429, 503) and status < 500
    return KeyServerError(status, kind, permanent, message)

