"""Errors raised by the ``attestation`` package.

Each verification step has its own error, so a caller (or the CLI) can tell
which step failed without parsing messages.

    AttestationError
    ├── DecodeError             step 1: bytes are not a well-formed, in-bounds Nitro document
    ├── CertificateChainError   step 2: leaf → cabundle → pinned root does not verify at time T
    ├── SignatureError          step 3: ES384 COSE signature does not verify with the leaf key
    ├── FreshnessError          step 4: too old, in the future, or the nonce does not match
    ├── PolicyError             step 5: PCRs, debug mode, user data, public key … not as expected
    ├── NsmError                the Nitro Secure Module (device or simulator) refused a request
    │   └── NsmUnavailable      there is no NSM device to talk to
    └── BindingError            the enclave's channel bindings (memwal-enclave layouts) do not hold
        ├── UserDataError       user_data is not a block of a known layout version
        └── ResponseSignatureError  a response's x-enclave-signature is missing, malformed, stale or wrong
"""


class AttestationError(Exception):
    """Base class for every error of the attestation package."""


class DecodeError(AttestationError):
    """The input is not a strictly encoded COSE_Sign1 Nitro attestation document."""


class CertificateChainError(AttestationError):
    """The certificate chain does not lead to the pinned root at the chosen time."""


class SignatureError(AttestationError):
    """The COSE_Sign1 ES384 signature does not verify with the leaf certificate's key."""


class FreshnessError(AttestationError):
    """The document is too old, dated in the future, or carries the wrong nonce."""


class PolicyError(AttestationError):
    """The verified document does not satisfy the caller's policy."""


class NsmError(AttestationError):
    """The NSM answered a request with an error code (``code`` is the nsm-api name)."""

    def __init__(self, code: str, detail: str = "") -> None:
        self.code = code
        super().__init__(f"NSM error {code}" + (f": {detail}" if detail else ""))


class NsmUnavailable(NsmError):
    """No NSM device could be opened (not running inside a Nitro enclave)."""

    def __init__(self, detail: str) -> None:
        super().__init__("Unavailable", detail)


class BindingError(AttestationError):
    """A memwal-enclave channel binding (user_data layout, signed responses) does not hold."""


class UserDataError(BindingError):
    """The user_data block has the wrong size or an unknown layout version."""


class ResponseSignatureError(BindingError):
    """A response signature is missing, malformed, outside the allowed time window, or does not verify."""
