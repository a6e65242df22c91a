"""The sidecar: a separate process and the only holder of key material.

It serves the relayer over a Unix socket (bearer token, constant-time compare) with the contract in
``sidecar/protocol.py``: Seal encryption, Walrus uploads tagged and handed to their owner by a server-wallet
transaction, opening stored memories (Redis-cached, raced aggregator reads plus Seal decryption, so only
plaintext leaves), and on-chain blob discovery for restore.
"""
