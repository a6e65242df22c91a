"""Errors raised by the ``sealcrypto`` package.

    SealError
    ├── InvalidCiphertext     the bytes are not a well-formed EncryptedObject (version 0); safe to report
    ├── InvalidKey            a group element, scalar or key given to us is malformed
    ├── InvalidTransaction    a seal_approve PTB is malformed or breaks the key-server rules
    ├── NotEnoughShares       fewer usable user secret keys than the object's threshold
    ├── DecryptError          opaque: the keys do not open this object (no detail, so no oracle)
    ├── SessionError          the exported session (x-seal-session) is malformed, forged or expired
    │   └── SessionExpired
    └── KeyServerError        a key server refused or failed; ``permanent`` says whether a retry can help
"""

from __future__ import annotations


class SealError(Exception):
    """Base class for every error of the sealcrypto package."""


class InvalidCiphertext(SealError):
    """The encrypted object could not be parsed or is structurally inconsistent."""


class InvalidKey(SealError):
    """A point, scalar or key does not decode (wrong length, not on the curve, not canonical)."""


class InvalidTransaction(SealError):
    """A programmable transaction is malformed or is not a valid seal_approve request."""


class NotEnoughShares(SealError):
    """Fewer user secret keys than the threshold are available for the object's key servers."""


class DecryptError(SealError):
    """The object does not decrypt with the given keys. Deliberately carries no detail."""

    def __init__(self) -> None:
        super().__init__("decryption failed")

    def __reduce__(self) -> tuple[type[DecryptError], tuple[()]]:
        return (DecryptError, ())  # crosses process boundaries (sidecar decryption workers) without its args


class SessionError(SealError):
    """The session is malformed, its signature does not verify, or it does not match its address."""


class SessionExpired(SessionError):
    """The session's time-to-live has passed (or it was created in the future)."""


class KeyServerError(SealError):
    """A key server answered with an error, or could not be reached.

    ``status`` is the HTTP status (0 for transport failures), ``kind`` the server's ``error`` field
    (or a local label such as ``Timeout``), and ``permanent`` is true when retrying cannot help
    (access denied, invalid PTB or signatures) and false for outages, 5xx, 429 and timeouts.
    """

    def __init__(self, status: int, kind: str, permanent: bool, message: str = "") -> None:
        self.status = status
        self.kind = kind
        self.permanent = permanent
        super().__init__(f"key server error {status} {kind}" + (f": {message}" if message else ""))
