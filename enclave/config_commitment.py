"""The runtime configuration commitment: canonical JSON → SHA-384 → PCR16, then PCR16 is locked.

What the relayer will do depends on non-secret configuration the host hands it (package and registry
ids, endpoints, the egress allowlist, limits, Seal servers). The image measurement (PCR0) cannot cover
it, so at boot the runtime extends PCR16 with the SHA-384 of its canonical JSON and locks PCR16
(the QOS/Oyster practice): every later document then proves which configuration is running.

Canonical JSON: UTF-8, keys sorted, no whitespace (``separators=(",", ":")``), ASCII-escaped, lists
in the order given except the allowlist and Seal servers, which are sorted. No secret ever enters it:
the secrets arrive later through provisioning and are kept out of ``RuntimeConfiguration``.

Expected PCR16 for a configuration digest ``d``: ``SHA384(0x00×48 ‖ d)`` (one extend from zero).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from attestation.errors import NsmError
from attestation.nsm import Attester

from .errors import ConfigurationCommitmentError

CONFIGURATION_PCR = 16
PCR_LENGTH = 48
COMMITMENT_VERSION = 1


@dataclass(frozen=True)
class RuntimeConfiguration:
    """Every non-secret setting that changes what the enclave does with user data."""

    package_id: str
    network: str
    registry_id: str
    sui_rpc_url: str
    sui_graphql_url: str
    walrus_publisher_url: str
    walrus_aggregator_urls: tuple[str, ...]
    walrus_package_id: str
    openai_api_base: str
    embedding_model: str
    llm_model: str
    egress_allowlist: tuple[str, ...]  # "host:port", sorted
    rate_limit_disabled: bool
    rate_limit_per_minute: int
    rate_limit_per_hour: int
    rate_limit_delegate_per_minute: int
    storage_quota_bytes: int
    seal_servers: tuple[tuple[str, int], ...]  # (object id, weight), sorted
    seal_threshold: int
    tls_hostname: str

    @classmethod
    def from_settings(cls, settings, *, egress_allowlist: Sequence[str], tls_hostname: str) -> RuntimeConfiguration:
        """Build from ``relayer.settings.Settings`` (which must already be validated)."""
        return cls(
            package_id=settings.package_id,
            network=settings.sui_network,
            registry_id=settings.registry_id,
            sui_rpc_url=settings.sui_rpc_url,
            sui_graphql_url=settings.sui_graphql_url,
            walrus_publisher_url=settings.walrus_publisher_url,
            walrus_aggregator_urls=tuple(settings.walrus_aggregator_urls),
            walrus_package_id=settings.walrus_package_id,
            openai_api_base=settings.openai_api_base,
            embedding_model=settings.embedding_model,
            llm_model=settings.llm_model,
            egress_allowlist=tuple(sorted(set(egress_allowlist))),
            rate_limit_disabled=settings.rate_limit_disabled,
            rate_limit_per_minute=settings.rate_limit_per_minute,
            rate_limit_per_hour=settings.rate_limit_per_hour,
            rate_limit_delegate_per_minute=settings.rate_limit_delegate_per_minute,
            storage_quota_bytes=settings.storage_quota_bytes,
            seal_servers=tuple(sorted((server.object_id, server.weight) for server in settings.seal_servers)),
            seal_threshold=settings.effective_seal_threshold,
            tls_hostname=tls_hostname,
        )

    def canonical_json(self) -> bytes:
        document = asdict(self)
        document["egress_allowlist"] = sorted(self.egress_allowlist)
        document["seal_servers"] = [{"objectId": object_id, "weight": weight} for object_id, weight in sorted(self.seal_servers)]
        document["version"] = COMMITMENT_VERSION
        return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")

    def digest(self) -> bytes:
        """SHA-384 of the canonical JSON (48 bytes): the value in user_data and extended into PCR16."""
        return hashlib.sha384(self.canonical_json()).digest()


def expected_configuration_pcr(configuration_digest: bytes) -> bytes:
    """PCR16 after the single boot-time extend: SHA384(48 zero bytes ‖ digest)."""
    _check_digest(configuration_digest)
    return hashlib.sha384(bytes(PCR_LENGTH) + configuration_digest).digest()


def commit_configuration(attester: Attester, configuration_digest: bytes) -> bytes:
    """Extend PCR16 with the digest and lock it; return the new PCR16 value.

    Refuses (ConfigurationCommitmentError) unless PCR16 is still unlocked and all-zero, so a second
    runtime in the same enclave cannot append to or hide behind an existing commitment.
    """
    _check_digest(configuration_digest)
    try:
        locked, value = attester.describe_pcr(CONFIGURATION_PCR)
        if locked or any(value):
            raise ConfigurationCommitmentError(f"PCR{CONFIGURATION_PCR} is not in its boot state (locked={locked})")
        extended = attester.extend_pcr(CONFIGURATION_PCR, configuration_digest)
        attester.lock_pcr(CONFIGURATION_PCR)
        locked, value = attester.describe_pcr(CONFIGURATION_PCR)
    except NsmError as error:
        raise ConfigurationCommitmentError(f"NSM refused the PCR{CONFIGURATION_PCR} commitment: {error}") from error
    if not locked or value != extended or extended != expected_configuration_pcr(configuration_digest):
        raise ConfigurationCommitmentError(f"PCR{CONFIGURATION_PCR} does not hold the expected commitment")
    return extended


def _check_digest(digest: bytes) -> None:
    if not isinstance(digest, bytes) or len(digest) != 48:
        raise ValueError("configuration digest must be a 48-byte SHA-384")
