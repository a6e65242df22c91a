"""What a memwal-enclave document must say beyond the Nitro format, and what a client accepts.

:class:`EnclaveBinding` is a policy (``verify(document) -> None``) for the memwal-enclave layouts:

    user_data   a v1 block (user_data.py): TLS SPKI digest, configuration SHA-384, X25519 provisioning key
    public_key  the 32-byte Ed25519 identity key that signs every response
    PCR16       SHA384(48 zero bytes ‖ configuration SHA-384) when present: the runtime extended it with the
                same digest it put in user_data, then locked it (enclave/config_commitment.py)
    accepted    the configuration SHA-384 is one of the published ones (when any are given)

:class:`EnclavePolicy` is what a client accepts: any of the published PCR sets (during a rollout the old
and the new image are both published), any of the published configuration hashes, anchored in one root.
An empty list (of PCR sets or of configuration hashes) means that part is NOT checked: the CLI says so
in capitals, and the client wrappers (memwal_enclave) refuse it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from manifest import load_manifest

from .document import VerifiedDocument
from .errors import PolicyError, UserDataError
from .measurements import load_expected_pcrs
from .policy import AllOf, AnyOf, PCRs, Policy
from .trust import TrustRoot
from .user_data import CONFIGURATION_DIGEST_SIZE, IDENTITY_KEY_SIZE, EnclaveUserData

CONFIGURATION_PCR = 16
PCR_LENGTH = 48


def configuration_pcr(configuration_sha384: bytes) -> bytes:
    """PCR16 after the runtime's single boot-time extend: SHA384(48 zero bytes ‖ digest)."""
    if not isinstance(configuration_sha384, bytes) or len(configuration_sha384) != CONFIGURATION_DIGEST_SIZE:
        raise ValueError("configuration digest must be a 48-byte SHA-384")
    return hashlib.sha384(bytes(PCR_LENGTH) + configuration_sha384).digest()


class EnclaveBinding:
    """Policy: the memwal-enclave user_data, identity key and PCR16 hold; the configuration is an accepted one."""

    def __init__(self, configuration_hashes: Iterable[bytes] = ()) -> None:
        hashes = tuple(configuration_hashes)
        for digest in hashes:
            if not isinstance(digest, bytes) or len(digest) != CONFIGURATION_DIGEST_SIZE:
                raise ValueError("a configuration hash must be 48 bytes (SHA-384)")
        self.configuration_hashes = hashes

    def verify(self, document: VerifiedDocument) -> None:
        try:
            binding = EnclaveUserData.decode(document.user_data)
        except UserDataError as error:
            raise PolicyError(f"user_data: {error}") from None
        if document.public_key is None or len(document.public_key) != IDENTITY_KEY_SIZE:
            raise PolicyError("public_key is not a 32-byte Ed25519 identity key")
        committed = document.pcrs.get(CONFIGURATION_PCR)
        if committed is not None and not hmac.compare_digest(committed, configuration_pcr(binding.configuration_sha384)):
            raise PolicyError(f"PCR{CONFIGURATION_PCR} does not commit to the configuration hash in user_data")
        if self.configuration_hashes and not any(
            hmac.compare_digest(binding.configuration_sha384, accepted) for accepted in self.configuration_hashes
        ):
            expected = ", ".join(digest.hex() for digest in self.configuration_hashes)
            raise PolicyError(
                f"configuration hash mismatch: expected {expected}, enclave runs {binding.configuration_sha384.hex()}"
            )


@dataclass(frozen=True)
class EnclavePolicy:
    """What a client accepts: one of ``measurements``, one of ``configuration_hashes``, under ``trust_root``."""

    measurements: tuple[PCRs, ...]
    configuration_hashes: tuple[bytes, ...]
    trust_root: TrustRoot = field(default_factory=TrustRoot.aws)

    def __post_init__(self) -> None:
        EnclaveBinding(self.configuration_hashes)  # validates the sizes

    @classmethod
    def published(
        cls,
        *,
        pcrs: Iterable[PCRs | str | bytes | Path],
        configuration_hashes: Iterable[bytes | str] = (),
        manifests: Iterable[str | Path] = (),
        trust_root: TrustRoot | None = None,
    ) -> EnclavePolicy:
        """From what an operator publishes: pcrs.json files (or parsed PCRs), hashes (hex) and/or manifests."""
        measurements = tuple(_measurements(item) for item in pcrs)
        hashes = [bytes.fromhex(item) if isinstance(item, str) else item for item in configuration_hashes]
        hashes += [load_manifest(Path(path)).enclave.digest() for path in manifests]
        return cls(measurements, tuple(dict.fromkeys(hashes)), trust_root or TrustRoot.aws())

    @property
    def checks_measurements(self) -> bool:
        return bool(self.measurements)

    @property
    def checks_configuration(self) -> bool:
        return bool(self.configuration_hashes)

    def require_complete(self) -> None:
        """Raise ValueError unless both the measurements and the configuration are checked."""
        if not self.checks_measurements:
            raise ValueError("give the published measurements (pcrs.json): without them any enclave image is accepted")
        if not self.checks_configuration:
            raise ValueError(
                "give the published configuration (a manifest or its hash): it decides where plaintext may go"
            )

    def document_policy(self) -> Policy:
        """Measurements (any published set), then the binding (layouts, PCR16, accepted configuration)."""
        binding = EnclaveBinding(self.configuration_hashes)
        if not self.measurements:
            return binding
        measured: Policy = self.measurements[0] if len(self.measurements) == 1 else AnyOf(self.measurements)
        return AllOf([measured, binding])


def _measurements(item: PCRs | str | bytes | Path) -> PCRs:
    if isinstance(item, PCRs):
        return item
    if isinstance(item, bytes):
        return load_expected_pcrs(item)
    if isinstance(item, str) and item.lstrip().startswith("{"):
        return load_expected_pcrs(item)
    with Path(item).open("rb") as file:
        return load_expected_pcrs(file.read(64 * 1024 + 1))
