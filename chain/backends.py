"""Pick the ``ChainReader`` backend: GraphQL (the default), gRPC or JSON-RPC.

``SUI_PROTOCOL`` chooses; each backend needs its own endpoint (``SUI_GRAPHQL_URL``, ``SUI_GRPC_URL``,
``SUI_RPC_URL``). GraphQL is the default because Sui Foundation full nodes stopped serving JSON-RPC in
2026 and GraphQL is the read API Mysten documents for indexed reads; gRPC is the full node's own API.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from chain.graphql import GraphQLChainReader
from chain.grpc import GrpcChainReader
from chain.jsonrpc import JsonRpcChainReader
from chain.reader import ChainReader

SUI_PROTOCOLS = ("graphql", "grpc", "jsonrpc")
DEFAULT_SUI_PROTOCOL = "graphql"


@dataclass(frozen=True)
class SuiEndpoints:
    graphql_url: str = ""  # SUI_GRAPHQL_URL, e.g. https://graphql.mainnet.sui.io/graphql
    grpc_url: str = ""  # SUI_GRPC_URL, e.g. https://fullnode.mainnet.sui.io:443
    jsonrpc_url: str = ""  # SUI_RPC_URL

    def for_protocol(self, protocol: str) -> str:
        """The endpoint ``protocol`` reads through (may be empty: the caller reports what is missing)."""
        if protocol not in SUI_PROTOCOLS:
            raise ValueError(f"unknown Sui protocol {protocol!r}; expected one of {', '.join(SUI_PROTOCOLS)}")
        return {"graphql": self.graphql_url, "grpc": self.grpc_url, "jsonrpc": self.jsonrpc_url}[protocol]


def make_chain_reader(url: str, *, protocol: str, http: httpx.AsyncClient) -> ChainReader:
    """A reader for ``url``; ``protocol`` picks the backend (``http`` serves GraphQL and JSON-RPC)."""
    if protocol == "graphql":
        return GraphQLChainReader(url, http=http)
    if protocol == "grpc":
        return GrpcChainReader(url)
    if protocol == "jsonrpc":
        return JsonRpcChainReader(url, http=http)
    raise ValueError(f"unknown Sui protocol {protocol!r}; expected one of {', '.join(SUI_PROTOCOLS)}")
