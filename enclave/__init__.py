"""The enclave runtime around the relayer: identity keys, attested TLS, signed responses,
one-shot attested provisioning, the configuration commitment in PCR16 and the egress allowlist.

``python -m enclave`` boots it (see ``runtime.py``); docs/tee.md documents every byte layout.
Submodules are imported explicitly; this package imports nothing at import time.
"""
