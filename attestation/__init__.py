"""AWS Nitro Enclaves attestation: decode, verify, apply policies, talk to the NSM.

Verifying a document an enclave just produced for your nonce::

    from datetime import datetime, timezone
    import attestation

    verifier = attestation.Verifier.aws()          # pinned AWS Nitro root G1
    expected = attestation.load_expected_pcrs(open("pcrs.json").read())
    policy = attestation.AllOf([expected, attestation.UserDataDigest(tls_spki_der)])
    try:
        document = verifier.verify_live(
            raw_document,
            policy=policy,
            nonce=my_fresh_nonce,
            now=datetime.now(timezone.utc),        # the caller picks the time
        )
    except attestation.AttestationError as error:  # DecodeError, CertificateChainError,
        reject(error)                              # SignatureError, FreshnessError, PolicyError
    else:
        pin(document.public_key)

Checking a stored document as of its own signed timestamp::

    verifier.verify_archived(raw_document, policy=expected)

Debug-mode documents (PCR0/1/2 all zero) are rejected unless the policy
includes ``UnsafeAllowDebugMode()``. Inside an enclave, ``NsmAttester()``
talks to ``/dev/nsm``. Tests use the simulator and test PKI, imported
explicitly so they stand out::

    from attestation.simulator import SimulatedNsm
    from attestation.testing import TestPki

    pki = TestPki.create(now=now)
    nsm = SimulatedNsm(pki=pki, clock=lambda: now, boot_pcrs={0: pcr0, 1: pcr1, 2: pcr2})
    raw = nsm.attestation(user_data=None, nonce=nonce, public_key=key)
    attestation.Verifier(trust_root=pki.trust_root()).verify_live(raw, policy=..., nonce=nonce, now=now)

Talking to a live memwal-enclave (imported explicitly; they pull in httpx):
``attestation.binding.EnclavePolicy.published(pcrs=[...], manifests=[...])`` is what a client accepts (any
published PCR set and configuration); ``attestation.client.AttestedClient.connect(url, policy=..., now=...)``
attests the enclave and yields an ``httpx.AsyncClient`` whose transport (transport.py) re-attests every new
TLS key and checks every response's signature; ``attestation.provisioning`` seals secrets to the attested
provisioning key. The official SDK over it: ``memwal_enclave.AttestedMemWal``.

Command line: ``python -m attestation verify FILE --help``; ``config-hash MANIFEST`` (what an enclave with
that manifest attests); ``verify-url URL`` and ``provision URL`` for a live enclave.
"""

from .document import AttestationDocument, UnknownKeys, VerifiedDocument
from .errors import (
    AttestationError,
    CertificateChainError,
    DecodeError,
    FreshnessError,
    NsmError,
    NsmUnavailable,
    PolicyError,
    SignatureError,
)
from .measurements import load_expected_pcrs
from .nsm import Attester, NsmAttester
from .policy import (
    AllOf,
    AnyOf,
    Nonce,
    PCRs,
    Policy,
    PublicKey,
    RejectDebugMode,
    UnsafeAllowDebugMode,
    UnsafeNoOp,
    UserData,
    UserDataDigest,
)
from .trust import TrustRoot
from .verifier import Verifier

__all__ = [
    "AllOf",
    "AnyOf",
    "AttestationDocument",
    "AttestationError",
    "Attester",
    "CertificateChainError",
    "DecodeError",
    "FreshnessError",
    "Nonce",
    "NsmAttester",
    "NsmError",
    "NsmUnavailable",
    "PCRs",
    "Policy",
    "PolicyError",
    "PublicKey",
    "RejectDebugMode",
    "SignatureError",
    "TrustRoot",
    "UnknownKeys",
    "UnsafeAllowDebugMode",
    "UnsafeNoOp",
    "UserData",
    "UserDataDigest",
    "VerifiedDocument",
    "Verifier",
    "load_expected_pcrs",
]
