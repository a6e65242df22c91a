"""The appliance manifest: one TOML document that describes a deployment, for both sides of vsock.

The parent's host proxy derives its routes from it and serves the enclave's part over the configuration
channel; the enclave runtime validates that part, commits its SHA-384 to PCR16 and runs with it. An
auditor recomputes the same hash from the published manifest (``EnclaveDocument.digest``)::

    format = 1

    [enclave]
    tls_hostname = "memwal.example.com"        # SAN of the enclave's self-signed certificate [localhost]
    ingress_port = 8443                        # vsock port the enclave serves HTTPS on [8443]

    [relayer]                                  # the relayer's non-secret variables (README table)
    SUI_NETWORK = "testnet"
    MEMWAL_PACKAGE_ID = "0x…"
    MEMWAL_REGISTRY_ID = "0x…"
    SUI_RPC_URL = "https://fullnode.testnet.sui.io:443"
    WALRUS_PUBLISHER_URL = "https://publisher.walrus-testnet.walrus.space"
    WALRUS_AGGREGATOR_URLS = ["https://aggregator.walrus-testnet.walrus.space"]
    SEAL_SERVER_CONFIGS = [{ objectId = "0x…", weight = 1 }]

    [[egress]]                                 # the enclave's only ways out, one parent vsock port each
    name = "sui-rpc"
    destination = "fullnode.testnet.sui.io:443"
    vsock_port = 8101

    [host]                                     # parent only: never sent, not in the hash
    enclave_cid = 16
    public_ingress = "tcp:0.0.0.0:443"

    from manifest import load_manifest
    deployment = load_manifest(Path("manifest.toml"))
    deployment.enclave.digest().hex()          # what /attestation reports and PCR16 commits to

Modules: errors, variables (which relayer variables a manifest may set), model (dataclasses, validation,
canonical JSON, the enclave's hosts table), reading (TOML/JSON with size caps), channel (the framing).
docs/nitro.md describes the deployment; docs/tee.md the commitment.
"""

from .channel import FrameReader, encode_frame
from .errors import ManifestError
from .model import (
    CONFIGURATION_PORT,
    CREDENTIALS_PORT,
    HEARTBEAT_PORT,
    LOGS_PORT,
    METRICS_PORT,
    TIME_PORT,
    EgressRoute,
    EnclaveDocument,
    HostSection,
    Manifest,
)
from .provisioning import KmsProvisioning, PeerProvisioning, ProvisioningSection
from .reading import MAX_MANIFEST_BYTES, load_manifest, parse_enclave_document, parse_manifest

__all__ = [
    "CONFIGURATION_PORT",
    "CREDENTIALS_PORT",
    "HEARTBEAT_PORT",
    "LOGS_PORT",
    "MAX_MANIFEST_BYTES",
    "METRICS_PORT",
    "TIME_PORT",
    "EgressRoute",
    "EnclaveDocument",
    "FrameReader",
    "HostSection",
    "KmsProvisioning",
    "Manifest",
    "ManifestError",
    "PeerProvisioning",
    "ProvisioningSection",
    "encode_frame",
    "load_manifest",
    "parse_enclave_document",
    "parse_manifest",
]
