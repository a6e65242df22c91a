"""Platform Configuration Register values of an EIF, computed the way nitro-cli and eif_build do.

Each PCR is one TPM-style extend from 48 zero bytes: PCRn = SHA384(0^48 || SHA384(measured bytes)),
where the measured bytes are section *data* only (no section headers), in file order:

    PCR0  kernel || cmdline || every ramdisk        (the whole image)
    PCR1  kernel || cmdline || ramdisk[0]           (the bootstrap: kernel, init, modules)
    PCR2  ramdisk[1] || ramdisk[2] || ...           (the application)
    PCR8  DER of the signing certificate            (only for signed images)

Metadata and signature sections are not measured.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from imagebuild.eif import EnclaveImage, SectionType

PCR_BYTES = 48
# nitro-cli prints `format!("{:?}", Sha384::new())`; its describe-eif/build-enclave output shows this.
HASH_ALGORITHM_NAME = "Sha384 { ... }"


@dataclass(frozen=True)
class Measurements:
    pcr0: bytes
    pcr1: bytes
    pcr2: bytes
    pcr8: bytes | None = None

    def as_json_dict(self) -> dict[str, str]:
        """The keys nitro-cli writes with `--output-file`/`describe-eif`."""
        result = {"HashAlgorithm": HASH_ALGORITHM_NAME, "PCR0": self.pcr0.hex(), "PCR1": self.pcr1.hex(), "PCR2": self.pcr2.hex()}
        if self.pcr8 is not None:
            result["PCR8"] = self.pcr8.hex()
        return result

    def to_json(self) -> str:
        return json.dumps(self.as_json_dict(), indent=2, sort_keys=True) + "\n"


def extend_from_zero(measured: "hashlib._Hash") -> bytes:
    return hashlib.sha384(b"\0" * PCR_BYTES + measured.digest()).digest()


def certificate_pcr(certificate_pem: bytes) -> bytes:
    der = x509.load_pem_x509_certificate(certificate_pem).public_bytes(Encoding.DER)
    return hashlib.sha384(b"\0" * PCR_BYTES + hashlib.sha384(der).digest()).digest()


def measure(image: EnclaveImage, *, signing_certificate_pem: bytes | None = None) -> Measurements:
    whole, bootstrap, application = hashlib.sha384(), hashlib.sha384(), hashlib.sha384()
    ramdisk_index = 0
    for section in image.sections:
        if section.type in (SectionType.KERNEL, SectionType.CMDLINE):
            whole.update(section.data)
            bootstrap.update(section.data)
        elif section.type is SectionType.RAMDISK:
            whole.update(section.data)
            (bootstrap if ramdisk_index == 0 else application).update(section.data)
            ramdisk_index += 1
    pcr8 = certificate_pcr(signing_certificate_pem) if signing_certificate_pem is not None else None
    return Measurements(extend_from_zero(whole), extend_from_zero(bootstrap), extend_from_zero(application), pcr8)
