"""The configuration channel's framing, free of I/O: the parent sends one frame, then closes.

The enclave connects to the parent (vsock CID 3, ``model.CONFIGURATION_PORT``; a Unix socket or TCP in
tests) and reads::

    "MWM1"            4 bytes   magic and version
    length            u32       big-endian, 1..MAX_MANIFEST_BYTES
    document          length    the enclave document, canonical JSON (model.EnclaveDocument)

Nothing is sent the other way. The frame is not authenticated: the enclave validates the document,
commits its SHA-384 to PCR16 and reports it in every attestation, so a client that pins the hash (or
recomputes it from the published manifest) notices a host that served anything else.
"""

from __future__ import annotations

import struct

from .errors import ManifestError
from .reading import MAX_MANIFEST_BYTES

MAGIC = b"MWM1"
HEADER = struct.Struct(">4sI")


def encode_frame(document: bytes) -> bytes:
    if not 0 < len(document) <= MAX_MANIFEST_BYTES:
        raise ManifestError(f"the enclave document must be 1..{MAX_MANIFEST_BYTES} bytes")
    return HEADER.pack(MAGIC, len(document)) + document


class FrameReader:
    """Feed bytes as they arrive; ``document`` is set once the frame is complete. Raises ManifestError."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._length: int | None = None
        self.document: bytes | None = None

    @property
    def wanted(self) -> int:
        """How many more bytes the frame needs (0 once complete)."""
        if self.document is not None:
            return 0
        if self._length is None:
            return HEADER.size - len(self._buffer)
        return self._length - len(self._buffer)

    def feed(self, data: bytes) -> None:
        if self.document is not None:
            if data:
                raise ManifestError("the parent sent bytes after the configuration frame")
            return
        self._buffer += data
        if self._length is None and len(self._buffer) >= HEADER.size:
            magic, length = HEADER.unpack_from(self._buffer)
            if magic != MAGIC:
                raise ManifestError(f"the configuration channel did not start with {MAGIC!r} (wrong port?)")
            if not 0 < length <= MAX_MANIFEST_BYTES:
                raise ManifestError(f"the configuration frame announces {length} bytes (limit {MAX_MANIFEST_BYTES})")
            self._length = length
            del self._buffer[: HEADER.size]
        if self._length is not None and len(self._buffer) >= self._length:
            if len(self._buffer) > self._length:
                raise ManifestError("the parent sent bytes after the configuration frame")
            self.document = bytes(self._buffer)
            self._buffer.clear()
