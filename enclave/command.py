"""The process entry point of the enclave runtime: logging, signals, exit codes.

``python -m enclave`` is what the image's /init executes: the real NSM, vsock, no options. Development
and test entries (``python -m devtools.simulated_enclave``) build another platform and call :func:`execute`.

Exit status: 0 after a clean shutdown (SIGINT/SIGTERM, also while still waiting for configuration),
1 if the runtime failed while serving, 2 if it refused to boot (bad enclave document, configuration in
the environment, NSM unavailable, PCR16 already committed, a listener that cannot open).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from attestation.errors import NsmError
from host_proxy.errors import HostProxyError
from manifest import CONFIGURATION_PORT, ManifestError
from memwal_common.environment import SettingsError
from memwal_common.logs import configure_logging
from memwal_common.signals import shutdown_on_signals

from .boot import run
from .errors import TeeError
from .platform import Platform, nitro_platform

logger = logging.getLogger("memwal.enclave")

DESCRIPTION = f"""\
The enclave runtime, as the image's /init starts it inside an AWS Nitro enclave. It waits for its
configuration from the parent (vsock CID 3, port {CONFIGURATION_PORT}: the host proxy serves the
manifest's enclave part), validates it, commits its SHA-384 to PCR16 with the real NSM, then serves
attested TLS on the manifest's ingress vsock port: /attestation, one-shot /provision, /health, and the
relayer behind signed responses once secrets are provisioned. It takes no options and reads no
configuration from the environment. Outside an enclave use `python -m devtools.simulated_enclave`.
docs/nitro.md runs it; docs/tee.md documents every byte.
"""
REFUSALS = (ManifestError, SettingsError, TeeError, NsmError, HostProxyError, ValueError, OSError)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m enclave", description=DESCRIPTION)
    parser.parse_args(argv)
    return execute(nitro_platform(dict(os.environ)))


def execute(platform: Platform) -> int:
    """Run the runtime on ``platform`` until SIGINT/SIGTERM; the exit status is documented above."""
    configure_logging("json")

    async def main_async() -> int:
        return await run(platform, shutdown_on_signals())

    try:
        return asyncio.run(main_async())
    except REFUSALS as error:
        print(f"enclave runtime: refusing to boot: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
        return 2
