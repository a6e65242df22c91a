"""The MemWal-compatible relayer: Starlette on hypercorn, run inside the enclave."""

__version__ = "0.1.0"
