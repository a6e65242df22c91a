"""The configuration commitment: SHA-384 of the enclave document → PCR16, then PCR16 is locked.

What the relayer will do depends on non-secret configuration the parent hands over at boot (the
manifest's [enclave], [relayer] and [[egress]] tables: package and registry ids, endpoints, the egress
allowlist, limits, Seal servers). The image measurement (PCR0-2) cannot cover it, so the runtime
extends PCR16 with the SHA-384 of the document's canonical JSON (manifest.model) and locks PCR16 (the
QOS/Oyster practice): every later attestation document proves which configuration is running, and the
same 48 bytes are in its user_data. No secret is ever part of it: secrets arrive later through
provisioning, and a manifest naming one is refused.

Expected PCR16 for a document digest ``d``: ``SHA384(0x00×48 ‖ d)`` (one extend from zero).
"""

from __future__ import annotations

from attestation.binding import CONFIGURATION_PCR, configuration_pcr
from attestation.errors import NsmError
from attestation.nsm import Attester

from .errors import ConfigurationCommitmentError


def expected_configuration_pcr(configuration_digest: bytes) -> bytes:
    """PCR16 after the single boot-time extend: SHA384(48 zero bytes ‖ digest) (clients check the same)."""
    return configuration_pcr(configuration_digest)


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


def _check_digest(digest: object) -> None:
    if not isinstance(digest, bytes) or len(digest) != 48:
        raise ValueError("configuration digest must be a 48-byte SHA-384")
