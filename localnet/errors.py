"""Errors raised by the ``localnet`` package (offline stand-ins; never used in production paths).

    LocalnetError
    ├── BlobStoreError          the on-disk Walrus blob store refused a request
    │   ├── BlobTooLarge        the blob is larger than the configured cap
    │   └── InvalidBlobId       the text is not a 43-character unpadded base64url blob id
    ├── StateError              the state directory or its localnet.json is missing or malformed
    └── AdminRequestFailed      a ``/_localnet/`` admin route of a running localnet refused a request
"""


class LocalnetError(Exception):
    """Base class for every error of the localnet package."""


class BlobStoreError(LocalnetError):
    """The on-disk blob store could not store or serve a blob."""


class BlobTooLarge(BlobStoreError):
    """The blob is larger than the store's size cap."""


class InvalidBlobId(BlobStoreError):
    """The blob id is not 43 characters of the unpadded base64url alphabet."""


class StateError(LocalnetError):
    """The localnet state directory (or its ``localnet.json``) is missing or malformed."""


class AdminRequestFailed(LocalnetError):
    """A ``/_localnet/`` admin route answered with an error or an unexpected shape."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
