"""What the runtime takes from the place it runs: attester, channels, clock, entropy, resolver, scratch space.

Production (``python -m enclave`` inside the image) uses :func:`nitro_platform`: the real NSM, vsock to
the parent, the wall clock, the kernel RNG, ``/etc/hosts`` written from the manifest. Nothing here
imports a simulator: development and tests build a :class:`Platform` themselves and inject a
simulated attester (``python -m devtools.simulated_enclave``; tests/enclave/conftest.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from attestation.nsm import Attester, NsmAttester
from attestation.trust import TrustRoot
from host_proxy.channels import EnclaveChannels

from .clock_sync import set_system_clock
from .configuration import Backoff

Clock = Callable[[], datetime]
Random = Callable[[int], bytes]

# Inside the image: /tmp is a tmpfs mounted by /init, and the whole root file system is in RAM.
IMAGE_DATA_DIRECTORY = Path("/tmp/memwal")
IMAGE_HOSTS_FILE = Path("/etc/hosts")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Platform:
    """Everything the boot needs from outside the runtime's code; see the module docstring."""

    attester: Callable[[], Attester]  # opened once the configuration is valid; NsmAttester on Nitro
    channels: EnclaveChannels  # what a channel port means: vsock to CID 3 on Nitro
    environment: Mapping[str, str]  # the process environment; configuration and secrets in it are refused
    clock: Clock = utc_now
    entropy: Random = os.urandom  # mixed with the attester's GetRandom for every boot key
    hosts_file: Path | None = None  # write the manifest's hosts table here (the image's /etc/hosts); None: leave it
    data_directory: Path = IMAGE_DATA_DIRECTORY  # MEMWAL_DATA_DIR of the relayer: the sidecar's socket
    forwarders: bool = True  # loopback egress listeners; off only for a runtime that shares the host's loopback
    backoff: Backoff = field(default_factory=Backoff)  # waiting for the configuration channel
    trust_root: TrustRoot = field(default_factory=TrustRoot.aws)  # what a peer's attestation must chain to
    forward_logs: bool = True  # send the log lines to the parent's log channel (log_forwarding.py)
    keep_time: bool = True  # correct the clock from the parent's time channel, bounded (clock_sync.py)
    system_clock: Callable[[datetime], None] | None = None  # step the system clock too (the image: clock_settime)


def nitro_platform(environment: Mapping[str, str]) -> Platform:
    """The production platform: ``/dev/nsm``, vsock, the image's ``/etc/hosts`` and ``/tmp``."""
    return Platform(
        attester=NsmAttester,
        channels=EnclaveChannels.vsock(),
        environment=environment,
        hosts_file=IMAGE_HOSTS_FILE,
        data_directory=IMAGE_DATA_DIRECTORY,
        system_clock=set_system_clock,
    )
