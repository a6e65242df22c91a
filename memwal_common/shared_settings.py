"""Settings the relayer, sidecar, indexer and enclave runtime must read identically, computed only here.

- ``sui_endpoint``: which Sui URL a process reads through (SUI_PROTOCOL picks SUI_RPC_URL or SUI_GRAPHQL_URL).
- ``seal_threshold``: SEAL_THRESHOLD, or by default min(2, total key-server weight).
- The secret variable names: which ones only the sidecar may keep, and which ones an enclave accepts only
  through sealed provisioning (never from the host's environment).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from memwal_common.environment import SealServerConfig, SettingsError, env_int

SuiProtocol = Literal["jsonrpc", "graphql"]
SUI_PROTOCOLS: tuple[SuiProtocol, ...] = ("jsonrpc", "graphql")

# Server-wallet keys: the relayer hands them to its sidecar and drops them from its own environment.
WALLET_KEY_VARIABLES = ("SERVER_SUI_PRIVATE_KEYS", "SERVER_SUI_PRIVATE_KEY")
# What the sidecar drops from its environment once read, so nothing it might spawn inherits them.
SIDECAR_SECRET_VARIABLES = (*WALLET_KEY_VARIABLES, "SIDECAR_AUTH_TOKEN")
# Every secret; an enclave takes these only from a sealed provisioning envelope.
SECRET_VARIABLES = frozenset({*SIDECAR_SECRET_VARIABLES, "OPENAI_API_KEY", "DATABASE_URL", "REDIS_URL"})


@dataclass(frozen=True)
class SuiEndpoint:
    protocol: SuiProtocol
    url: str  # empty when the chosen protocol's variable is unset; validate() of each process refuses that

    @property
    def variable(self) -> str:
        return "SUI_GRAPHQL_URL" if self.protocol == "graphql" else "SUI_RPC_URL"


def sui_protocol_from(env: Mapping[str, str]) -> SuiProtocol:
    value = env.get("SUI_PROTOCOL", "jsonrpc").strip() or "jsonrpc"
    for protocol in SUI_PROTOCOLS:
        if value == protocol:
            return protocol
    raise SettingsError(f"SUI_PROTOCOL must be jsonrpc or graphql, got {value!r}")


def sui_endpoint(protocol: SuiProtocol, *, rpc_url: str, graphql_url: str) -> SuiEndpoint:
    """The URL a process reads Sui through: the GraphQL one for ``graphql``, else the JSON-RPC one."""
    return SuiEndpoint(protocol, graphql_url if protocol == "graphql" else rpc_url)


def sui_endpoint_from(env: Mapping[str, str]) -> SuiEndpoint:
    return sui_endpoint(
        sui_protocol_from(env), rpc_url=env.get("SUI_RPC_URL", "").strip(), graphql_url=env.get("SUI_GRAPHQL_URL", "").strip()
    )


def default_seal_threshold(servers: tuple[SealServerConfig, ...]) -> int:
    return min(2, sum(server.weight for server in servers))


def seal_threshold(env: Mapping[str, str], servers: tuple[SealServerConfig, ...]) -> int:
    """SEAL_THRESHOLD when set (and not 0), else the default for ``servers``."""
    return env_int(env, "SEAL_THRESHOLD", 0, minimum=0) or default_seal_threshold(servers)
