"""SimulatedNsm: an in-process NSM that signs real COSE documents under a test PKI.

Modelled on QOS's MockNsm. It keeps 32 SHA-384 PCRs:

* PCR0..15 are set at "boot" (pass the PCR0/1/2 of an image build to make the
  simulator report that image) and are locked, as on a real enclave;
* PCR16..31 start at zero and are app-extendable: ``new = SHA384(old ‖ data)``;
  once locked, extending fails with ``NsmError("ReadOnlyIndex")``.

Documents contain PCR0..15 plus every PCR16+ that was extended or locked,
and use the indefinite-length payload map of 2026 NSMs. ``exchange`` accepts
the same CBOR request bytes as ``/dev/nsm``, so ``NsmAttester(device=simulator)``
exercises the real codec. Nothing here is trusted by ``Verifier.aws()``.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from . import nsm_protocol as protocol
from .errors import NsmError
from .testing import IssuedCertificate, Random, TestPki, encode_payload, milliseconds_since_epoch, sign_cose

PCR_LENGTH = 48
BOOT_PCR_COUNT = 16
RANDOM_BLOCK_SIZE = 256
DEFAULT_MODULE_ID = "i-0123456789abcdef0-enc0123456789abcdef"
# A fresh signing leaf is issued when the current one has less than this left.
LEAF_RENEWAL_MARGIN = timedelta(hours=1)
LEAF_BACKDATE = timedelta(minutes=1)


class SimulatedNsm:
    """An :class:`attestation.nsm.Attester` for tests and local development."""

    def __init__(
        self,
        *,
        pki: TestPki,
        clock: Callable[[], datetime],
        boot_pcrs: Mapping[int, bytes],
        rng: Random = os.urandom,
        module_id: str = DEFAULT_MODULE_ID,
    ) -> None:
        self._pcrs = [bytes(PCR_LENGTH)] * protocol.PCR_COUNT
        for index, value in boot_pcrs.items():
            if not 0 <= index < BOOT_PCR_COUNT:
                raise ValueError(f"boot PCRs are 0..{BOOT_PCR_COUNT - 1}; PCR{index} is app-extendable")
            if not isinstance(value, bytes) or len(value) != PCR_LENGTH:
                raise ValueError(f"PCR{index} must be {PCR_LENGTH} bytes")
            self._pcrs[index] = value
        self._locked = set(range(BOOT_PCR_COUNT))
        self._touched: set[int] = set()
        self._pki = pki
        self._clock = clock
        self._rng = rng
        self._module_id = module_id
        self._leaf: IssuedCertificate | None = None
        self._lock = threading.Lock()

    def describe_pcr(self, index: int) -> tuple[bool, bytes]:
        protocol.validate_request(protocol.DescribePcr(index))
        with self._lock:
            return index in self._locked, self._pcrs[index]

    def extend_pcr(self, index: int, data: bytes) -> bytes:
        protocol.validate_request(protocol.ExtendPcr(index, data))
        with self._lock:
            if index in self._locked:
                raise NsmError("ReadOnlyIndex", f"PCR{index} is locked")
            self._pcrs[index] = hashlib.sha384(self._pcrs[index] + data).digest()
            self._touched.add(index)
            return self._pcrs[index]

    def lock_pcr(self, index: int) -> None:
        protocol.validate_request(protocol.LockPcr(index))
        with self._lock:
            self._locked.add(index)
            self._touched.add(index)

    def lock_pcrs(self, count: int) -> None:
        protocol.validate_request(protocol.LockPcrs(count))
        with self._lock:
            self._locked.update(range(count))
            self._touched.update(range(BOOT_PCR_COUNT, max(count, BOOT_PCR_COUNT)))

    def attestation(self, *, user_data: bytes | None, nonce: bytes | None, public_key: bytes | None) -> bytes:
        protocol.validate_request(protocol.AttestationRequest(user_data=user_data, nonce=nonce, public_key=public_key))
        now = self._clock()
        with self._lock:
            leaf = self._current_leaf(now)
            included = sorted(set(range(BOOT_PCR_COUNT)) | self._touched)
            payload = encode_payload(
                module_id=self._module_id,
                timestamp_ms=milliseconds_since_epoch(now),
                pcrs={index: self._pcrs[index] for index in included},
                certificate=leaf.der,
                cabundle=self._pki.cabundle,
                public_key=public_key,
                user_data=user_data,
                nonce=nonce,
            )
            return sign_cose(payload, leaf.private_key)

    def get_random(self, length: int) -> bytes:
        if not 0 <= length <= 64 * 1024:
            raise ValueError("random length must be in 0..65536")
        return self._rng(length)

    def exchange(self, request: bytes) -> bytes:
        """Answer raw ``/dev/nsm`` request bytes with response bytes, errors included."""
        try:
            decoded = protocol.decode_request(request)
            return self._dispatch(decoded)
        except NsmError as error:
            return protocol.encode_error(error.code)

    def _dispatch(self, request: protocol.NsmRequest) -> bytes:
        if isinstance(request, protocol.DescribePcr):
            locked, value = self.describe_pcr(request.index)
            return protocol.encode_response("DescribePCR", {"lock": locked, "data": value})
        if isinstance(request, protocol.ExtendPcr):
            return protocol.encode_response("ExtendPCR", {"data": self.extend_pcr(request.index, request.data)})
        if isinstance(request, protocol.LockPcr):
            self.lock_pcr(request.index)
            return protocol.encode_response("LockPCR", None)
        if isinstance(request, protocol.LockPcrs):
            self.lock_pcrs(request.count)
            return protocol.encode_response("LockPCRs", None)
        if isinstance(request, protocol.AttestationRequest):
            document = self.attestation(user_data=request.user_data, nonce=request.nonce, public_key=request.public_key)
            return protocol.encode_response("Attestation", {"document": document})
        return protocol.encode_response("GetRandom", {"random": self._rng(RANDOM_BLOCK_SIZE)})

    def _current_leaf(self, now: datetime) -> IssuedCertificate:
        leaf = self._leaf
        if (
            leaf is None
            or now < leaf.certificate.not_valid_before_utc
            or now > leaf.certificate.not_valid_after_utc - LEAF_RENEWAL_MARGIN
        ):
            leaf = self._pki.issue_leaf(module_id=self._module_id, not_before=now - LEAF_BACKDATE)
            self._leaf = leaf
        return leaf
