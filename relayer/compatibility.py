"""The relayer's compatibility contract, served by /version and folded into /health."""

from __future__ import annotations

import os

from relayer import __version__

API_VERSION = "1.0.0"
MIN_SUPPORTED_SDK = {"typescript": "0.0.4", "python": "0.1.0", "mcp": "0.0.1"}
FEATURE_FLAGS = {
    "asyncRemember": True,
    "bulkRemember": True,
    "analyze": True,
    "ask": True,
    "restore": True,
    "embed": True,
}
DEPRECATIONS = [
    {"name": "x-delegate-key header", "replacement": "x-seal-session"},
    {"name": "SEAL_KEY_SERVERS env", "replacement": "SEAL_SERVER_CONFIGS"},
]


def version_document() -> dict:
    build = {}
    if os.environ.get("MEMWAL_BUILD_COMMIT"):
        build["commit"] = os.environ["MEMWAL_BUILD_COMMIT"]
    return {
        "relayerVersion": __version__,
        "apiVersion": API_VERSION,
        "minSupportedSdk": dict(MIN_SUPPORTED_SDK),
        "featureFlags": dict(FEATURE_FLAGS),
        "deprecations": list(DEPRECATIONS),
        "build": build,
    }
