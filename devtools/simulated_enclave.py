"""``python -m devtools.simulated_enclave``: the enclave runtime on a simulated Nitro platform.

The same boot code as ``python -m enclave`` (enclave/boot.py), with a different platform injected: the
NSM simulator signing under a throwaway TEST root (never trusted by ``Verifier.aws()``), and channels over
Unix sockets or TCP instead of vsock. `make run` (devtools/appliance.py) starts it in a network
namespace; the QEMU test boot (tests/boot) starts it from its overlay with ``--transport tcp:10.0.2.100
--hosts-file /etc/hosts``. This module, the simulator and the test PKI never ship in the image
(imagebuild/contents.py derives the image from ``python -m enclave``'s imports, and a test refuses them).

Imports: the standard library, enclave, attestation (simulator, testing, measurements) only, so an
overlay ramdisk needs nothing else from devtools/.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import sys
from pathlib import Path

from attestation.measurements import load_expected_pcrs
from attestation.simulator import SimulatedNsm
from attestation.testing import TestPki, load_root
from enclave.command import execute
from enclave.platform import Platform, utc_now
from host_proxy.channels import TRANSPORT_HELP, EnclaveChannels
from host_proxy.errors import AddressError

MAX_PCRS_FILE_BYTES = 64 * 1024
ROOT_PEM_BEGIN = "----- simulated NSM test root (PEM) -----"
ROOT_PEM_END = "----- end of simulated NSM test root -----"

logger = logging.getLogger("memwal.devtools.simulated_enclave")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.simulated_enclave",
        description="Run the enclave runtime with a SIMULATED Nitro Secure Module (documents signed by a throwaway "
        "test root, not AWS) and channels to the parent over Unix sockets or TCP. Development and tests only.",
    )
    parser.add_argument("--transport", required=True, help=f"the channels to the parent: {TRANSPORT_HELP}")
    parser.add_argument("--pcrs", type=Path, help="pcrs.json whose PCR0/1/2 the simulator reports (default: all zero)")
    parser.add_argument(
        "--test-root-out", metavar="PATH", help="write the simulator's test root PEM here ('-': print it between markers)"
    )
    parser.add_argument(
        "--test-pki", type=Path, metavar="FILE",
        help="keep the simulator's test root (key and certificate) in FILE across runs: created if missing, reused "
        "after; enclaves sharing it attest each other (peer provisioning)",
    )  # fmt: skip
    parser.add_argument("--data-dir", type=Path, required=True, help="the relayer's data directory (sidecar socket)")
    parser.add_argument("--hosts-file", type=Path, help="write the manifest's hosts table here (only in a guest of its own)")
    parser.add_argument(
        "--no-forwarders", action="store_true", help="no loopback egress listeners (only when sharing the host's loopback)"
    )
    return parser


def simulated_platform(arguments: argparse.Namespace) -> Platform:
    channels = EnclaveChannels.parse(arguments.transport)
    boot_pcrs: dict[int, bytes] = {}
    if arguments.pcrs is not None:
        boot_pcrs = dict(load_expected_pcrs(arguments.pcrs.read_bytes()[:MAX_PCRS_FILE_BYTES]).expected)
    pki = _test_pki(arguments.test_pki)
    _publish_root(pki.root_pem, arguments.test_root_out)

    def attester() -> SimulatedNsm:
        logger.warning("SIMULATED attester: documents are signed by a throwaway TEST root, not AWS")
        return SimulatedNsm(pki=pki, clock=utc_now, boot_pcrs=boot_pcrs)

    return Platform(
        attester=attester,
        channels=channels,
        environment=dict(os.environ),
        hosts_file=arguments.hosts_file,
        data_directory=arguments.data_dir,
        forwarders=not arguments.no_forwarders,
        trust_root=pki.trust_root(),
    )


def _test_pki(path: Path | None) -> TestPki:
    """A fresh test PKI, or one under the root kept in ``path`` (written, owner-only, on first use)."""
    if path is None:
        return TestPki.create(now=utc_now())
    if path.exists():
        return TestPki.create(now=utc_now(), root=load_root(path.read_bytes()[:MAX_PCRS_FILE_BYTES]))
    pki = TestPki.create(now=utc_now())
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(pki.root_with_key_pem())
    return pki


def _publish_root(pem: bytes, where: str | None) -> None:
    if where == "-":
        print(ROOT_PEM_BEGIN, pem.decode("ascii").strip(), ROOT_PEM_END, sep="\n", flush=True)
    elif where:
        Path(where).write_bytes(pem)
    print(f"simulated NSM test root sha256 {hashlib.sha256(pem).hexdigest()}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    arguments = parser.parse_args(argv)
    try:
        platform = simulated_platform(arguments)
    except (AddressError, OSError, ValueError) as error:
        parser.error(str(error))
    return execute(platform)


if __name__ == "__main__":
    sys.exit(main())
