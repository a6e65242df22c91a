"""``[provisioning]``: where an enclave gets its secrets at every boot, without a person when it can.

Part of the enclave document, so committed to PCR16 and attested: a client (and an auditor) can see which
paths may ever hand this enclave its secrets::

    [provisioning]
    sources = ["peer", "kms", "operator"]   # tried in this order, round after round, until one delivers
    retry_seconds = 10                      # pause between rounds

    [provisioning.kms]                      # AWS KMS Decrypt with an attested Recipient (enclave/kms.py)
    endpoint = "https://kms.us-east-1.amazonaws.com"   # must be an [[egress]] destination
    region = "us-east-1"
    ciphertext = "AQICAH…"                  # base64 CiphertextBlob of the secrets JSON (public: only KMS opens it)
    key_id = "arn:aws:kms:…"                # optional

    [provisioning.peer]                     # an already provisioned enclave with the same PCRs and configuration
    peers = ["https://memwal-peers.internal:8443"]     # each must be an [[egress]] destination

``operator`` is ``POST /provision`` (attestation provision, a sealed envelope); it is the default and,
when listed, stays open while the automatic sources are tried.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ManifestError

SOURCES = ("operator", "kms", "peer")
DEFAULT_SOURCES = ("operator",)
DEFAULT_RETRY_SECONDS = 10
MAX_RETRY_SECONDS = 3600
MAX_PEERS = 16
MAX_CIPHERTEXT_BYTES = 6 * 1024  # KMS CiphertextBlob of ≤ 4 KiB plaintext
_KEYS = ("sources", "retry_seconds", "kms", "peer")
_KMS_KEYS = ("endpoint", "region", "ciphertext", "key_id")
_PEER_KEYS = ("peers",)
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")
_KEY_ID = re.compile(r"[A-Za-z0-9:/_.+=,@-]{1,256}")


@dataclass(frozen=True)
class KmsProvisioning:
    endpoint: str  # https URL of the KMS endpoint (an egress destination)
    region: str
    ciphertext: bytes  # the CiphertextBlob
    key_id: str = ""

    def as_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "endpoint": self.endpoint,
            "region": self.region,
            "ciphertext": base64.b64encode(self.ciphertext).decode("ascii"),
        }
        if self.key_id:
            document["key_id"] = self.key_id
        return document


@dataclass(frozen=True)
class PeerProvisioning:
    peers: tuple[str, ...]  # https URLs of enclaves of the same deployment

    def as_json(self) -> dict[str, Any]:
        return {"peers": list(self.peers)}


@dataclass(frozen=True)
class ProvisioningSection:
    sources: tuple[str, ...] = DEFAULT_SOURCES
    retry_seconds: int = DEFAULT_RETRY_SECONDS
    kms: KmsProvisioning | None = None
    peer: PeerProvisioning | None = field(default=None)

    def __post_init__(self) -> None:
        if not self.sources or len(set(self.sources)) != len(self.sources):
            raise ManifestError("provisioning.sources must list each source once, at least one")
        for source in self.sources:
            if source not in SOURCES:
                raise ManifestError(f"provisioning.sources: {source!r} is not one of {', '.join(SOURCES)}")
        if ("kms" in self.sources) != (self.kms is not None):
            raise ManifestError("[provisioning.kms] is needed exactly when sources lists \"kms\"")
        if ("peer" in self.sources) != (self.peer is not None):
            raise ManifestError("[provisioning.peer] is needed exactly when sources lists \"peer\"")
        if not 1 <= self.retry_seconds <= MAX_RETRY_SECONDS:
            raise ManifestError(f"provisioning.retry_seconds must be 1..{MAX_RETRY_SECONDS}")

    @property
    def urls(self) -> tuple[tuple[str, str], ...]:
        """(where, URL) of every upstream the sources dial: each must be an [[egress]] destination."""
        urls = [("provisioning.kms.endpoint", self.kms.endpoint)] if self.kms else []
        urls += [(f"provisioning.peer.peers[{index}]", url) for index, url in enumerate(self.peer.peers if self.peer else ())]
        return tuple(urls)

    def as_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"sources": list(self.sources), "retry_seconds": self.retry_seconds}
        if self.kms is not None:
            document["kms"] = self.kms.as_json()
        if self.peer is not None:
            document["peer"] = self.peer.as_json()
        return document

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ProvisioningSection:
        _only(data, "provisioning", _KEYS)
        sources = data.get("sources", list(DEFAULT_SOURCES))
        if not isinstance(sources, list) or not all(isinstance(source, str) for source in sources):
            raise ManifestError("provisioning.sources must be an array of strings")
        retry = data.get("retry_seconds", DEFAULT_RETRY_SECONDS)
        if isinstance(retry, bool) or not isinstance(retry, int):
            raise ManifestError("provisioning.retry_seconds must be an integer")
        return cls(
            sources=tuple(sources),
            retry_seconds=retry,
            kms=_kms(data["kms"]) if "kms" in data else None,
            peer=_peer(data["peer"]) if "peer" in data else None,
        )


def _only(data: Mapping[str, Any], where: str, allowed: tuple[str, ...]) -> None:
    if not isinstance(data, Mapping):
        raise ManifestError(f"{where} must be a table")
    unknown = sorted(str(key) for key in set(data) - set(allowed))
    if unknown:
        raise ManifestError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; allowed: {', '.join(allowed)}")


def _https_url(where: str, value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"https?://[^\s/?#]+/?", value) or len(value) > 300:
        raise ManifestError(f"{where} must be an http(s)://host[:port] URL without a path")
    return value.rstrip("/")


def _kms(data: Any) -> KmsProvisioning:
    _only(data, "provisioning.kms", _KMS_KEYS)
    for key in ("endpoint", "region", "ciphertext"):
        if key not in data:
            raise ManifestError(f"provisioning.kms.{key} is required")
    region = data["region"]
    if not isinstance(region, str) or not _REGION.fullmatch(region):
        raise ManifestError("provisioning.kms.region must be an AWS region such as us-east-1")
    key_id = data.get("key_id", "")
    if not isinstance(key_id, str) or (key_id and not _KEY_ID.fullmatch(key_id)):
        raise ManifestError("provisioning.kms.key_id must be a key id, alias or ARN")
    ciphertext = data["ciphertext"]
    try:
        blob = base64.b64decode(ciphertext, validate=True) if isinstance(ciphertext, str) else b""
    except (binascii.Error, ValueError):
        blob = b""
    if not 0 < len(blob) <= MAX_CIPHERTEXT_BYTES:
        raise ManifestError(f"provisioning.kms.ciphertext must be base64 of 1..{MAX_CIPHERTEXT_BYTES} bytes")
    return KmsProvisioning(_https_url("provisioning.kms.endpoint", data["endpoint"]), region, blob, key_id)


def _peer(data: Any) -> PeerProvisioning:
    _only(data, "provisioning.peer", _PEER_KEYS)
    peers = data.get("peers")
    if not isinstance(peers, list) or not 1 <= len(peers) <= MAX_PEERS:
        raise ManifestError(f"provisioning.peer.peers must list 1..{MAX_PEERS} URLs")
    urls = tuple(_https_url(f"provisioning.peer.peers[{index}]", url) for index, url in enumerate(peers))
    if any(not url.startswith("https://") for url in urls):
        raise ManifestError("provisioning.peer.peers must be https:// URLs (the peer's attested TLS)")
    return PeerProvisioning(urls)
