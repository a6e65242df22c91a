"""Sui access for the relayer, sidecar, indexer and localnet.

Small pure helpers (``bcs``, ``address``, ``keys``, ``personal_message``) plus one read/execute
interface (``reader.ChainReader``) with a JSON-RPC and a GraphQL backend.
"""
