"""The relayer configuration a running localnet implies (parsed ``localnet.json`` → environment).

Split in two because the TEE appliance hands them over differently: the public part goes into the
enclave's environment (and its PCR16 commitment), the secrets only through sealed provisioning.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

# The localnet OpenAI stand-in serves these model names (without upstream's "openai/" prefix).
EMBEDDING_MODEL = "text-embedding-3-small"
LLM_MODEL = "gpt-4o-mini"


def relayer_configuration(info: Mapping[str, Any], *, sui_protocol: str = "graphql") -> dict[str, str]:
    """Non-secret relayer settings pointing at every localnet stand-in (``SUI_RPC_URL`` only when the
    localnet serves JSON-RPC)."""
    return {
        "SUI_NETWORK": info["sui_network"],
        "SUI_PROTOCOL": sui_protocol,
        "SUI_RPC_URL": info.get("sui_rpc_url") or "",
        "SUI_GRAPHQL_URL": info["sui_graphql_url"],
        "SUI_GRPC_URL": info.get("sui_grpc_url") or "",
        "MEMWAL_PACKAGE_ID": info["memwal_package_id"],
        "MEMWAL_REGISTRY_ID": info["memwal_registry_id"],
        "WALRUS_PUBLISHER_URL": info["walrus_publisher_url"],
        "WALRUS_AGGREGATOR_URLS": ",".join(info["walrus_aggregator_urls"]),
        "WALRUS_PACKAGE_ID": info["walrus_package_id"],
        "SEAL_SERVER_CONFIGS": json.dumps(
            [{"objectId": server["objectId"], "weight": server.get("weight", 1)} for server in info["seal_key_servers"]]
        ),
        "SEAL_THRESHOLD": str(info["seal_threshold"]),
        "OPENAI_API_BASE": info["openai_api_base"],
        "EMBEDDING_MODEL": EMBEDDING_MODEL,
        "LLM_MODEL": LLM_MODEL,
    }


def relayer_secrets(info: Mapping[str, Any]) -> dict[str, str]:
    """The localnet's secrets the relayer needs: server wallet keys and the OpenAI stand-in's key."""
    return {
        "SERVER_SUI_PRIVATE_KEYS": ",".join(info["server_wallet_keys"]),
        "OPENAI_API_KEY": info["openai_api_key"],
    }
