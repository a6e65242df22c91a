"""Pick the ``ChainReader`` backend for a Sui URL: JSON-RPC or GraphQL."""

from __future__ import annotations

import httpx

from chain.graphql import GraphQLChainReader
from chain.jsonrpc import JsonRpcChainReader
from chain.reader import ChainReader

SUI_PROTOCOLS = ("jsonrpc", "graphql")


def make_chain_reader(url: str, *, protocol: str, http: httpx.AsyncClient) -> ChainReader:
    """A reader for ``url``; ``protocol`` picks the backend (GraphQL URLs usually end in ``/graphql``)."""
    if protocol == "jsonrpc":
        return JsonRpcChainReader(url, http=http)
    if protocol == "graphql":
        return GraphQLChainReader(url, http=http)
    raise ValueError(f"unknown Sui protocol {protocol!r}; expected one of {', '.join(SUI_PROTOCOLS)}")
