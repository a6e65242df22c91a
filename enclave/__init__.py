"""The enclave runtime around the relayer: configuration from the parent, identity keys, attested TLS,
signed responses, one-shot attested provisioning, the configuration commitment in PCR16 and egress.

``python -m enclave`` boots it with the production platform (platform.py: the real NSM, vsock); boot.py is
the sequence, runtime.py what serves. docs/tee.md documents every byte layout, docs/nitro.md the deployment.
Submodules are imported explicitly; this package imports nothing at import time.
"""
