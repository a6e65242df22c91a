"""Build the enclave's secret source from the manifest's ``[provisioning]`` (committed to PCR16 with the rest).

    operator  POST /provision, a sealed envelope (provisioning.SealedEnvelopeSource)
    kms       AWS KMS Decrypt with an attested Recipient (kms.KmsRecipientSource), through the egress allowlist,
              signed with credentials from the parent's credentials channel
    peer      an already provisioned enclave of the same deployment (peer_provisioning.PeerSource)

They are tried in the manifest's order (provisioning.SourcesInOrder); every boot runs this, so a restarted
enclave provisions itself through the same paths.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import httpx
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from attestation.nsm import Attester
from attestation.trust import TrustRoot
from manifest import ProvisioningSection

from .kms import CredentialsProvider, KmsClient, KmsRecipientSource
from .peer_provisioning import PeerSource
from .provisioning import AutomaticSource, SealedEnvelopeSource, SourcesInOrder

Clock = Callable[[], datetime]
# The egress allowlist's transport with the given TLS context (None: verify upstream certificates with certifi).
EgressTransportFactory = Callable[[ssl.SSLContext | None], httpx.AsyncBaseTransport]


@dataclass(frozen=True)
class EnclaveKeys:
    """What the sources need of this boot's identity (tls_identity.EnclaveIdentity) and attestation."""

    user_data: bytes
    identity_public_key: bytes
    provisioning_key: X25519PrivateKey
    configuration_digest: bytes


def build_secret_source(
    section: ProvisioningSection,
    *,
    operator: SealedEnvelopeSource,
    attester: Attester,
    keys: EnclaveKeys,
    egress: EgressTransportFactory,
    credentials: CredentialsProvider,
    trust_root: TrustRoot,
    clock: Clock,
) -> SourcesInOrder:
    automatic: list[AutomaticSource] = []
    for name in section.sources:
        if name == "kms" and section.kms is not None:
            client = KmsClient(
                endpoint=section.kms.endpoint, region=section.kms.region, credentials=credentials, clock=clock,
                transport=lambda: egress(None),
            )  # fmt: skip
            automatic.append(KmsRecipientSource(section.kms, attester=attester, client=client))
        elif name == "peer" and section.peer is not None:
            peer = PeerSource(
                section.peer.peers, attester=attester, trust_root=trust_root,
                configuration_digest=keys.configuration_digest, user_data=keys.user_data,
                identity_public_key=keys.identity_public_key, provisioning_key=keys.provisioning_key,
                transport=egress, clock=clock,
            )  # fmt: skip
            automatic.append(peer)
    return SourcesInOrder(
        automatic, operator=operator if "operator" in section.sources else None, retry_seconds=section.retry_seconds
    )
