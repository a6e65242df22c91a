import ctypes
import hashlib

import cbor2
import pytest

from attestation import nsm_protocol as protocol
from attestation.errors import NsmError, NsmUnavailable
from attestation.nsm import NsmAttester, NsmDevice, NsmMessage, ioctl_request_number


class TestRequestEncoding:
    def test_rejects_out_of_range_arguments(self):
        with pytest.raises(ValueError, match="PCR index"):
            protocol.encode_request(protocol.DescribePcr(32))
        with pytest.raises(ValueError, match="extend data"):
            protocol.encode_request(protocol.ExtendPcr(16, b""))
        with pytest.raises(ValueError, match="LockPCRs count"):
            protocol.encode_request(protocol.LockPcrs(0))
        with pytest.raises(ValueError, match="nonce must be bytes of at most 512"):
            protocol.encode_request(protocol.AttestationRequest(user_data=None, nonce=bytes(513), public_key=None))

    def test_matches_serde_externally_tagged_enums(self):
        assert protocol.encode_request(protocol.GetRandom()) == cbor2.dumps("GetRandom")
        assert cbor2.loads(protocol.encode_request(protocol.DescribePcr(3))) == {"DescribePCR": {"index": 3}}
        assert cbor2.loads(protocol.encode_request(protocol.ExtendPcr(16, b"x"))) == {
            "ExtendPCR": {"index": 16, "data": b"x"}
        }
        assert cbor2.loads(protocol.encode_request(protocol.LockPcr(16))) == {"LockPCR": {"index": 16}}
        assert cbor2.loads(protocol.encode_request(protocol.LockPcrs(16))) == {"LockPCRs": {"range": 16}}
        attestation = protocol.AttestationRequest(user_data=b"u", nonce=None, public_key=b"k")
        assert cbor2.loads(protocol.encode_request(attestation)) == {
            "Attestation": {"user_data": b"u", "nonce": None, "public_key": b"k"}
        }

    def test_round_trips_through_decode_request(self):
        for request in (protocol.DescribePcr(1), protocol.ExtendPcr(17, b"abc"), protocol.LockPcrs(5),
                        protocol.AttestationRequest(user_data=None, nonce=b"n", public_key=None), protocol.GetRandom()):  # fmt: skip
            assert protocol.decode_request(protocol.encode_request(request)) == request


class TestResponseDecoding:
    def test_error_variant_raises_its_code(self):
        with pytest.raises(NsmError, match="ReadOnlyIndex") as caught:
            protocol.decode_response(protocol.encode_error("ReadOnlyIndex"), expected="ExtendPCR")
        assert caught.value.code == "ReadOnlyIndex"

    def test_unexpected_variant_and_garbage(self):
        with pytest.raises(NsmError, match="expected a ExtendPCR response, got LockPCR"):
            protocol.decode_response(cbor2.dumps("LockPCR"), expected="ExtendPCR")
        with pytest.raises(NsmError, match="InvalidResponse"):
            protocol.decode_response(b"\xff\x00", expected="GetRandom")
        with pytest.raises(NsmError, match="InvalidResponse"):
            protocol.decode_response(cbor2.dumps({"A": 1, "B": 2}), expected="A")

    def test_decodes_bodies(self):
        body = protocol.decode_response(cbor2.dumps({"DescribePCR": {"lock": True, "data": bytes(48)}}),
                                        expected="DescribePCR")  # fmt: skip
        assert protocol.response_field(body, "lock", bool) is True
        assert protocol.decode_response(cbor2.dumps("LockPCRs"), expected="LockPCRs") is None


class TestDevice:
    def test_missing_device_is_a_clear_error_not_a_fallback(self, tmp_path):
        with pytest.raises(NsmUnavailable, match="cannot open .*not inside a Nitro enclave"):
            NsmDevice(str(tmp_path / "nsm"))

    def test_default_attester_needs_dev_nsm(self):
        with pytest.raises(NsmUnavailable, match="/dev/nsm"):
            NsmAttester()

    def test_ioctl_failure_is_an_nsm_error(self):
        device = NsmDevice("/dev/null")  # opens, but /dev/null knows no NSM ioctl
        try:
            with pytest.raises(NsmError, match="InternalError: ioctl failed"):
                device.exchange(protocol.encode_request(protocol.GetRandom()))
        finally:
            device.close()

    def test_ioctl_number_and_message_layout_match_the_driver(self):
        # _IOWR(0x0A, 0, 32): two iovecs of (pointer, length) on a 64-bit kernel.
        assert ctypes.sizeof(NsmMessage) == 32
        assert NsmMessage.response.offset == 16
        assert ioctl_request_number() == 0xC0200A00


class TestNsmAttesterOverTheSimulator:
    def test_full_codec_round_trip(self, simulator):
        attester = NsmAttester(device=simulator)
        assert attester.describe_pcr(16) == (False, bytes(48))
        assert attester.extend_pcr(16, b"x") == hashlib.sha384(bytes(48) + b"x").digest()
        attester.lock_pcr(16)
        with pytest.raises(NsmError, match="ReadOnlyIndex"):
            attester.extend_pcr(16, b"y")
        assert len(attester.get_random(1000)) == 1000
        assert attester.attestation(user_data=b"u", nonce=None, public_key=None)[:1] == b"\x84"
