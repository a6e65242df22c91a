"""Environment-variable parsing shared by the relayer's and the sidecar's settings."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass


class SettingsError(ValueError):
    """The environment does not describe a runnable process; the message names the variable."""


@dataclass(frozen=True)
class SealServerConfig:
    object_id: str
    weight: int = 1
    aggregator_url: str | None = None


def env_flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def env_int(env: Mapping[str, str], name: str, default: int, *, minimum: int | None = None) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from exc
    if minimum is not None and value < minimum:
        raise SettingsError(f"{name} must be >= {minimum}, got {value}")
    return value


def parse_csv(raw: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (raw or "").split(",") if part.strip())


MAX_SEAL_CONFIG_BYTES = 64 * 1024
MAX_SEAL_WEIGHT_TOTAL = 254  # upstream's MAX_SEAL_WEIGHTED_SERVERS: share indices are one byte
_OBJECT_ID = re.compile(r"(0x)?[0-9a-fA-F]{1,64}")


def parse_key_server_ids(raw: str, name: str) -> tuple[SealServerConfig, ...]:
    """A comma-separated list of key-server object ids (``SEAL_LEGACY_DECRYPT_KEY_SERVERS``), weight 1 each."""
    if len(raw) > MAX_SEAL_CONFIG_BYTES:
        raise SettingsError(f"{name} is too large")
    servers = []
    for item in parse_csv(raw):
        if not _OBJECT_ID.fullmatch(item):
            raise SettingsError(f"{name} entries must be Sui object ids, got {item[:80]!r}")
        servers.append(SealServerConfig("0x" + item.lower().removeprefix("0x").rjust(64, "0")))
    if len({server.object_id for server in servers}) != len(servers):
        raise SettingsError(f"{name} lists a key server twice")
    return tuple(servers)


def parse_seal_servers(raw: str) -> tuple[SealServerConfig, ...]:
    if not raw.strip():
        return ()
    if len(raw) > MAX_SEAL_CONFIG_BYTES:
        raise SettingsError("SEAL_SERVER_CONFIGS is too large")
    try:
        items = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise SettingsError("SEAL_SERVER_CONFIGS must be a JSON array") from exc
    if not isinstance(items, list):
        raise SettingsError("SEAL_SERVER_CONFIGS must be a JSON array")
    servers = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("objectId"), str):
            raise SettingsError("each SEAL_SERVER_CONFIGS entry needs an objectId")
        weight = item.get("weight", 1)
        if not isinstance(weight, int) or isinstance(weight, bool) or not 1 <= weight <= 255:
            raise SettingsError("SEAL_SERVER_CONFIGS weight must be an integer in 1..255")
        servers.append(SealServerConfig(item["objectId"], weight, item.get("aggregatorUrl")))
    return tuple(servers)
