"""The process entry point of the enclave runtime: logging, signals, exit codes.

Exit status: 0 after a clean shutdown (SIGINT/SIGTERM), 1 if the runtime failed while serving,
2 if it refused to boot (configuration, NSM unavailable, PCR16 already committed).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from attestation.errors import NsmError
from memwal_common.environment import SettingsError
from memwal_common.logs import configure_logging
from memwal_common.signals import shutdown_on_signals

from .boot import run
from .errors import TeeError

logger = logging.getLogger("memwal.tee")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m enclave",
        description="Enclave runtime: attested TLS on BIND, /attestation, one-shot /provision, then the relayer "
        "behind signed responses. Configuration from the environment (docs/tee.md); secrets only via /provision.",
    )
    parser.parse_args(argv)
    log_format = os.environ.get("LOG_FORMAT", "json")
    configure_logging(log_format if log_format in ("json", "pretty") else "json")

    async def main_async() -> int:
        return await run(dict(os.environ), shutdown_on_signals())

    try:
        return asyncio.run(main_async())
    except (SettingsError, TeeError, NsmError, ValueError, OSError) as error:
        print(f"enclave runtime: refusing to boot: {type(error).__name__}: {error}", file=sys.stderr)
        return 2
