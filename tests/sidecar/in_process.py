"""The real sidecar app in this process, built exactly as ``python -m sidecar`` builds it, for ASGITransport tests."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AsyncExitStack
from typing import Any

from localnet.environment import relayer_configuration, relayer_secrets
from sidecar.app import build_app
from sidecar.services import open_sidecar_services
from sidecar.settings import SidecarSettings

SIDECAR_TOKEN = "in-process-sidecar-token-" + "x" * 16


def sidecar_environment(info: Mapping[str, Any], **overrides: str) -> dict[str, str]:
    """The environment the relayer would hand its sidecar for the localnet ``info``."""
    return {
        **relayer_configuration(info),
        **relayer_secrets(info),
        "SIDECAR_SOCKET": "unused-in-process.sock",
        "SIDECAR_AUTH_TOKEN": SIDECAR_TOKEN,
        "WALRUS_AGGREGATOR_RACE_AFTER_MS": "50",
        "WALRUS_TIMEOUT_SECS": "10",
        **overrides,
    }


async def sidecar_app(info: Mapping[str, Any], stack: AsyncExitStack, **overrides: str) -> Any:
    settings = SidecarSettings.from_environ(sidecar_environment(info, **overrides))
    return build_app(await open_sidecar_services(settings, stack))
