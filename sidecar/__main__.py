"""``python -m sidecar``: serve the sidecar API on SIDECAR_SOCKET until SIGINT/SIGTERM
(``python -m sidecar check``: its settings and network checks, sidecar/check.py).

Configuration comes only from the environment (see sidecar/settings.py and README). The socket file is
created with mode 0600 so only the relayer's user can connect.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from contextlib import AsyncExitStack
from typing import Any, cast

from hypercorn.asyncio import serve
from hypercorn.config import Config

from memwal_common.environment import SettingsError
from memwal_common.logs import configure_logging
from memwal_common.shared_settings import SIDECAR_SECRET_VARIABLES
from memwal_common.signals import shutdown_on_signals
from sidecar.app import build_app
from sidecar.check import main as check_main
from sidecar.lifeline import die_with_parent, expected_parent, watch_parent
from sidecar.services import open_sidecar_services
from sidecar.settings import SidecarSettings


async def run(settings: SidecarSettings, shutdown: asyncio.Event, parent_pid: int | None = None) -> None:
    watchdog = asyncio.create_task(watch_parent(parent_pid)) if parent_pid is not None else None
    config = Config()
    config.bind = [f"unix:{settings.socket_path}"]
    config.accesslog = None
    config.graceful_timeout = settings.graceful_timeout_seconds
    async with AsyncExitStack() as stack:
        services = await open_sidecar_services(settings, stack)
        old_umask = os.umask(0o177)  # the socket file is created 0600
        try:
            await serve(cast(Any, build_app(services)), config, shutdown_trigger=shutdown.wait)
        finally:
            os.umask(old_umask)
            if watchdog is not None:
                watchdog.cancel()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sidecar",
        description="MemWal sidecar: the only key holder. Serves Seal, Walrus and Sui operations to the relayer "
        "over a Unix socket. All configuration comes from the environment (see README).",
    )
    parser.parse_args(argv)
    # First of all: never outlive the relayer that holds our socket's other end (sidecar/lifeline.py).
    parent_pid = expected_parent(dict(os.environ))
    die_with_parent(parent_pid)
    try:
        settings = SidecarSettings.from_environ()
    except SettingsError as exc:
        print(f"sidecar: {exc}", file=sys.stderr)
        return 2
    # Keys now live in `settings` only; drop them from the environment of anything we might spawn.
    for name in SIDECAR_SECRET_VARIABLES:
        os.environ.pop(name, None)
    configure_logging(settings.log_format)

    async def main_async() -> None:
        shutdown = shutdown_on_signals()
        await run(settings, shutdown, parent_pid)

    asyncio.run(main_async())
    return 0


if __name__ == "__main__":
    sys.exit(check_main(sys.argv[2:]) if sys.argv[1:2] == ["check"] else main())
