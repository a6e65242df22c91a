"""Errors raised by ``enclave`` (the enclave runtime around the relayer).

    TeeError
    ├── RuntimeConfigurationError   the platform or the enclave document cannot be run (boot refuses to start)
    ├── ConfigurationCommitmentError PCR16 cannot be extended/locked, or is not in its boot state
    ├── ProvisioningError           POST /provision refused
    │   ├── SecretNotAllowed        a secret name outside the allowlist, or a malformed value
    │   ├── AlreadyProvisioned      the one-shot provisioning already happened
    │   ├── UnknownAttestation      the envelope names a document this boot did not issue (recently)
    │   └── SourceUnavailable       an automatic source (KMS, a peer) could not deliver this round (retried)
    │       └── RecipientEnvelopeError  KMS's CiphertextForRecipient does not open (malformed, wrong key)
    └── EgressDenied                an outbound (host, port) is not on the allowlist (also an httpx.ConnectError)

A malformed enclave document raises manifest.ManifestError, a relayer setting the relayer refuses
memwal_common.environment.SettingsError. The channel-binding errors (UserDataError, ResponseSignatureError) live in attestation.errors,
shared with the client. The HTTP edge answers with generic messages and logs the detail; clients (the attested
client, the operator CLI) get the specific error.
"""

from __future__ import annotations

import httpx


class TeeError(Exception):
    """Base class for every error of enclave."""


class RuntimeConfigurationError(TeeError):
    """The platform or the enclave document cannot be run (configuration in the environment, a forwarder
    that cannot listen, ...)."""


class ConfigurationCommitmentError(TeeError):
    """PCR16 could not be set to the configuration commitment (already extended or locked?)."""


class ProvisioningError(TeeError):
    """The enclave refused a provisioning request."""


class SecretNotAllowed(ProvisioningError):
    """A provisioned secret's name is not on the allowlist, or its value is malformed."""


class AlreadyProvisioned(ProvisioningError):
    """Secrets were already provisioned during this boot; provisioning is one-shot."""


class UnknownAttestation(ProvisioningError):
    """The envelope is bound to an attestation document this boot did not recently issue."""


class SourceUnavailable(ProvisioningError):
    """An automatic secret source could not deliver this time (unreachable, refused, not provisioned yet)."""


class RecipientEnvelopeError(SourceUnavailable):
    """The CMS EnvelopedData from KMS is malformed, uses other algorithms, or does not open with our key."""


class EgressDenied(TeeError, httpx.ConnectError):
    """An outbound connection to a (host, port) outside the egress allowlist was refused inside the enclave."""

    def __init__(self, message: str) -> None:
        httpx.ConnectError.__init__(self, message)
