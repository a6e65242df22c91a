"""The Nitro Secure Module: the ``Attester`` seam and the real ``/dev/nsm`` device.

:class:`NsmAttester` speaks the nsm-api driver protocol: one ``ioctl`` per
request, carrying a message of two iovecs (CBOR request in, CBOR response
out; the kernel shortens the response iovec to the bytes written). It never
falls back to the simulator: without the device it raises NsmUnavailable.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
from typing import Any, Protocol

from . import nsm_protocol as protocol
from .errors import NsmError, NsmUnavailable

DEVICE_PATH = "/dev/nsm"
NSM_IOCTL_MAGIC = 0x0A
MAX_RANDOM_REQUEST = 64 * 1024

_IOC_READ_WRITE = 3  # Linux _IOC_READ | _IOC_WRITE


class Attester(Protocol):
    """What the enclave needs from an NSM; real device and simulator both provide it."""

    def describe_pcr(self, index: int) -> tuple[bool, bytes]:
        """Return (locked, value) of PCR ``index``."""

    def extend_pcr(self, index: int, data: bytes) -> bytes:
        """Extend PCR ``index`` with ``data`` (new = SHA384(old ‖ data)); return the new value."""

    def lock_pcr(self, index: int) -> None:
        """Make PCR ``index`` read-only until the enclave stops."""

    def lock_pcrs(self, count: int) -> None:
        """Lock PCRs ``0 .. count-1`` (nsm-api's ``LockPCRs { range }``)."""

    def attestation(self, *, user_data: bytes | None, nonce: bytes | None, public_key: bytes | None) -> bytes:
        """Return a signed COSE_Sign1 attestation document carrying the three optional fields."""

    def get_random(self, length: int) -> bytes:
        """Return ``length`` bytes of NSM entropy."""


class _IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("length", ctypes.c_size_t)]


class NsmMessage(ctypes.Structure):
    """The driver's message: request iovec, then response iovec (``struct nsm_raw``)."""

    _fields_ = [("request", _IoVec), ("response", _IoVec)]


def ioctl_request_number() -> int:
    """``_IOWR(0x0A, 0, sizeof(NsmMessage))``, as nsm-api's ``request_code_readwrite!``."""
    size = ctypes.sizeof(NsmMessage)
    return (_IOC_READ_WRITE << 30) | (size << 16) | (NSM_IOCTL_MAGIC << 8) | 0


class NsmDevice:
    """Raw request/response exchange with ``/dev/nsm``."""

    def __init__(self, path: str = DEVICE_PATH) -> None:
        try:
            self._descriptor = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except OSError as error:
            raise NsmUnavailable(f"cannot open {path}: {error.strerror} (not inside a Nitro enclave?)") from None

    def exchange(self, request: bytes) -> bytes:
        if len(request) > protocol.REQUEST_MAX_SIZE:
            raise NsmError("InputTooLarge", "request exceeds the driver's buffer")
        request_buffer = ctypes.create_string_buffer(request, len(request))
        response_buffer = ctypes.create_string_buffer(protocol.RESPONSE_MAX_SIZE)
        message = NsmMessage(
            request=_IoVec(ctypes.addressof(request_buffer), len(request)),
            response=_IoVec(ctypes.addressof(response_buffer), protocol.RESPONSE_MAX_SIZE),
        )
        try:
            fcntl.ioctl(self._descriptor, ioctl_request_number(), message, True)
        except OSError as error:
            code = "InputTooLarge" if error.errno == errno.EMSGSIZE else "InternalError"
            raise NsmError(code, f"ioctl failed: {error.strerror}") from None
        length = min(message.response.length, protocol.RESPONSE_MAX_SIZE)
        return response_buffer.raw[:length]

    def close(self) -> None:
        os.close(self._descriptor)


class Exchange(Protocol):
    def exchange(self, request: bytes) -> bytes: ...


class NsmAttester:
    """The real NSM. ``device`` defaults to ``/dev/nsm``; any byte-level exchange can be injected."""

    def __init__(self, device: Exchange | None = None) -> None:
        self._device = device if device is not None else NsmDevice()

    def _call(self, request: protocol.NsmRequest, expected: str) -> dict[str, Any] | None:
        return protocol.decode_response(self._device.exchange(protocol.encode_request(request)), expected=expected)

    def describe_pcr(self, index: int) -> tuple[bool, bytes]:
        body = self._call(protocol.DescribePcr(index), "DescribePCR")
        return protocol.response_field(body, "lock", bool), protocol.response_field(body, "data", bytes)

    def extend_pcr(self, index: int, data: bytes) -> bytes:
        body = self._call(protocol.ExtendPcr(index, data), "ExtendPCR")
        return protocol.response_field(body, "data", bytes)

    def lock_pcr(self, index: int) -> None:
        self._call(protocol.LockPcr(index), "LockPCR")

    def lock_pcrs(self, count: int) -> None:
        self._call(protocol.LockPcrs(count), "LockPCRs")

    def attestation(self, *, user_data: bytes | None, nonce: bytes | None, public_key: bytes | None) -> bytes:
        request = protocol.AttestationRequest(user_data=user_data, nonce=nonce, public_key=public_key)
        return protocol.response_field(self._call(request, "Attestation"), "document", bytes)

    def get_random(self, length: int) -> bytes:
        if not 0 <= length <= MAX_RANDOM_REQUEST:
            raise ValueError(f"random length must be in 0..{MAX_RANDOM_REQUEST}")
        collected = b""
        # The NSM returns a fixed-size block per request; ask until we have enough.
        while len(collected) < length:
            block = protocol.response_field(self._call(protocol.GetRandom(), "GetRandom"), "random", bytes)
            if not block:
                raise NsmError("InvalidResponse", "GetRandom returned no bytes")
            collected += block
        return collected[:length]
