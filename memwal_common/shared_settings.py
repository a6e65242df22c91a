"""Settings the relayer, sidecar, indexer and enclave runtime must read identically, computed only here.

- ``network_setting``: a variable's value, or the ``SUI_NETWORK`` preset's (``memwal_common.networks``) when
  it is unset; explicit variables always win.
- ``sui_endpoint``: which Sui URL a process reads through: SUI_PROTOCOL (graphql by default, grpc or
  jsonrpc) picks SUI_GRAPHQL_URL, SUI_GRPC_URL or SUI_RPC_URL.
- ``seal_threshold``: SEAL_THRESHOLD, or by default min(2, total key-server weight).
- The secret variable names: which ones only the sidecar may keep, and which ones an enclave accepts only
  through sealed provisioning (never from the host's environment).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from memwal_common.environment import SealServerConfig, SettingsError, env_int
from memwal_common.networks import NetworkPreset, preset_for

SuiProtocol = Literal["graphql", "grpc", "jsonrpc"]
SUI_PROTOCOLS: tuple[SuiProtocol, ...] = ("graphql", "grpc", "jsonrpc")
# GraphQL by default: Sui Foundation full nodes no longer serve JSON-RPC, and GraphQL is the read API for
# indexed data; gRPC is the full node's own API. JSON-RPC stays for providers that still serve it.
DEFAULT_SUI_PROTOCOL: SuiProtocol = "graphql"
SUI_URL_VARIABLES: dict[SuiProtocol, str] = {"graphql": "SUI_GRAPHQL_URL", "grpc": "SUI_GRPC_URL", "jsonrpc": "SUI_RPC_URL"}
DEFAULT_SUI_NETWORK = "mainnet"

# What a network preset supplies, variable by variable (rendered as the variable's text form).
PRESET_VARIABLES: dict[str, Callable[[NetworkPreset], str]] = {
    "SUI_GRAPHQL_URL": lambda preset: preset.sui_graphql_url,
    "SUI_GRPC_URL": lambda preset: preset.sui_grpc_url,
    "WALRUS_PUBLISHER_URL": lambda preset: preset.walrus_publisher_url,
    "WALRUS_AGGREGATOR_URLS": lambda preset: ",".join(preset.walrus_aggregator_urls),
    "WALRUS_PACKAGE_ID": lambda preset: preset.walrus_package_id,
    "WALRUS_STORAGE_EPOCHS": lambda preset: str(preset.walrus_storage_epochs),
    "MEMWAL_PACKAGE_ID": lambda preset: preset.memwal_package_id,
    "MEMWAL_REGISTRY_ID": lambda preset: preset.memwal_registry_id,
    "SEAL_SERVER_CONFIGS": lambda preset: json.dumps(
        [{"objectId": server.object_id, "weight": server.weight} for server in preset.seal_servers]),
}

# Server-wallet keys: the relayer hands them to its sidecar and drops them from its own environment.
WALLET_KEY_VARIABLES = ("SERVER_SUI_PRIVATE_KEYS", "SERVER_SUI_PRIVATE_KEY")
# What the sidecar drops from its environment once read, so nothing it might spawn inherits them.
SIDECAR_SECRET_VARIABLES = (*WALLET_KEY_VARIABLES, "SIDECAR_AUTH_TOKEN")
# Every secret; an enclave takes these only from a sealed provisioning envelope.
SECRET_VARIABLES = frozenset(
    {*SIDECAR_SECRET_VARIABLES, "OPENAI_API_KEY", "DATABASE_URL", "DATABASE_READ_URL", "REDIS_URL",
     "OWNER_TOKEN_SERVICE_CREDENTIAL"}
)


@dataclass(frozen=True)
class SuiEndpoint:
    protocol: SuiProtocol
    url: str  # empty when the chosen protocol's variable is unset; validate() of each process refuses that

    @property
    def variable(self) -> str:
        return SUI_URL_VARIABLES[self.protocol]


def sui_network(env: Mapping[str, str]) -> str:
    return env.get("SUI_NETWORK", DEFAULT_SUI_NETWORK).strip() or DEFAULT_SUI_NETWORK


def network_environment(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with the SUI_NETWORK preset filling every preset variable that is unset or blank."""
    effective = dict(env)
    preset = preset_for(sui_network(env))
    if preset is None:
        return effective
    for name, render in PRESET_VARIABLES.items():
        if env.get(name, "").strip():
            continue
        if name == "WALRUS_AGGREGATOR_URLS" and env.get("WALRUS_AGGREGATOR_URL", "").strip():
            continue  # the single-URL form was given: it wins over the preset's list
        effective[name] = render(preset)
    return effective


def network_setting(env: Mapping[str, str], name: str) -> str:
    """``name``'s value: the variable when set (and not blank), else the SUI_NETWORK preset's, else ""."""
    return network_environment(env).get(name, "").strip()


def setting_source(env: Mapping[str, str], name: str) -> str:
    """Where a value comes from: ``env``, ``preset:<network>`` or ``unset``."""
    if env.get(name, "").strip():
        return "env"
    if network_setting(env, name):
        return f"preset:{sui_network(env)}"
    return "unset"


def sui_protocol_from(env: Mapping[str, str]) -> SuiProtocol:
    value = env.get("SUI_PROTOCOL", DEFAULT_SUI_PROTOCOL).strip() or DEFAULT_SUI_PROTOCOL
    for protocol in SUI_PROTOCOLS:
        if value == protocol:
            return protocol
    raise SettingsError(f"SUI_PROTOCOL must be {', '.join(SUI_PROTOCOLS)}, got {value!r}")


def sui_endpoint(protocol: SuiProtocol, *, rpc_url: str, graphql_url: str, grpc_url: str = "") -> SuiEndpoint:
    """The URL a process reads Sui through, for the chosen protocol."""
    return SuiEndpoint(protocol, {"graphql": graphql_url, "grpc": grpc_url, "jsonrpc": rpc_url}[protocol])


def sui_endpoint_from(env: Mapping[str, str]) -> SuiEndpoint:
    protocol = sui_protocol_from(env)
    return SuiEndpoint(protocol, network_setting(env, SUI_URL_VARIABLES[protocol]))


def default_seal_threshold(servers: tuple[SealServerConfig, ...]) -> int:
    return min(2, sum(server.weight for server in servers))


def seal_threshold(env: Mapping[str, str], servers: tuple[SealServerConfig, ...]) -> int:
    """SEAL_THRESHOLD when set (and not 0), else the default for ``servers``."""
    return env_int(env, "SEAL_THRESHOLD", 0, minimum=0) or default_seal_threshold(servers)
