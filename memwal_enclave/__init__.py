"""The official memwal SDK, talking to a memwal-enclave only after attesting it.

::

    from memwal_enclave import AttestedMemWal

    memwal = AttestedMemWal.create(
        key="<delegate key hex>",
        account_id="0x…",
        server_url="https://memwal.example.com",
        pcrs="pcrs.json",                  # the operator's published measurements (repeat in a list for rollouts)
        manifest="manifest.toml",          # or config_hash="<sha384 hex>" (python -m attestation config-hash)
    )
    result = await memwal.remember_and_wait("I am allergic to peanuts")
    await memwal.append_turn("chat-42", "hello", expected_head=-1)   # session chains (verbatim turns)
    window = await memwal.read_window("chat-42", last_n=20)

Every request goes over TLS to an enclave whose attestation document (AWS Nitro root, fresh nonce) shows
one of the published PCR sets and configuration hashes, and every response carries the signature of that
enclave's identity key. A new connection to an enclave this client has not attested (a restart, another
enclave behind a load balancer) is attested first; a verified document is trusted until its signing
certificate expires. ``AttestedMemWalSync`` is the same for synchronous code; both survive ``close()``.

The SDK itself is unmodified: the package hands it its HTTP client the only way the SDK builds one
(a subclass of ``memwal.MemWal`` replaces the lazy client factory), so user code touches no private
attribute. ``memwal-enclave verify URL`` (the console script) prints what an enclave attests.
"""

from .sdk import AttestedMemWal, AttestedMemWalSync, EnclaveConnection
from .sessions import SessionChainError, SessionChainTampered, SessionConflict

__all__ = [
    "AttestedMemWal", "AttestedMemWalSync", "EnclaveConnection", "SessionChainError", "SessionChainTampered", "SessionConflict",
]
