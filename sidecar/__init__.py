"""The sidecar: a separate process and the only holder of key material.

It serves the relayer over a Unix socket (bearer token, constant-time compare): Seal encrypt/decrypt,
Walrus upload/read with a Redis blob cache, the server-wallet transaction that tags a blob and hands it
to its owner, and on-chain blob discovery for restore.
"""
