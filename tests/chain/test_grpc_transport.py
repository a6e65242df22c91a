"""chain.grpc_transport: URLs, the size-capped codec, error mapping and protobuf JSON values."""

from __future__ import annotations

import socket

import pytest
from grpclib.const import Cardinality, Handler, Status
from grpclib.exceptions import GRPCError
from grpclib.server import Server
from pysui.sui.sui_grpc.suimsgs.google import protobuf as pb
from pysui.sui.sui_grpc.suimsgs.sui.rpc import v2

from chain.errors import ChainProtocolError, ChainUnavailable
from chain.grpc import GrpcChainReader
from chain.grpc_transport import (
    MAX_VALUE_DEPTH,
    CappedCodec,
    GrpcLimits,
    GrpcTarget,
    MessageTooLarge,
    python_to_value,
    value_to_python,
)


class TestTargets:
    @pytest.mark.parametrize(("url", "expected"), [
        ("https://fullnode.mainnet.sui.io:443", GrpcTarget("fullnode.mainnet.sui.io", 443, True)),
        ("https://fullnode.testnet.sui.io", GrpcTarget("fullnode.testnet.sui.io", 443, True)),
        ("fullnode.devnet.sui.io:9000", GrpcTarget("fullnode.devnet.sui.io", 9000, True)),
        ("http://127.0.0.1:9000", GrpcTarget("127.0.0.1", 9000, False)),
    ])
    def test_parsing(self, url, expected):
        assert GrpcTarget.from_url(url) == expected

    @pytest.mark.parametrize("url", ["ftp://x:1", "http://127.0.0.1", "https://host/path", "https://", "https://h?q=1"])
    def test_rejected(self, url):
        with pytest.raises(ValueError):
            GrpcTarget.from_url(url)


class TestCodec:
    def test_round_trip_and_cap(self):
        codec = CappedCodec(64)
        message = v2.GetObjectRequest(object_id="0x5")
        assert codec.decode(codec.encode(message, v2.GetObjectRequest), v2.GetObjectRequest) == message
        with pytest.raises(MessageTooLarge):
            codec.decode(b"\x0a" + bytes([100]) + b"x" * 100, v2.GetObjectRequest)
        with pytest.raises(TypeError):
            codec.encode(message, v2.GetEpochRequest)


class TestValues:
    def test_round_trip(self):
        value = {"a": "1", "b": [1, 2, {"c": None, "d": True}], "e": "AQI="}
        assert value_to_python(python_to_value(value)) == value

    def test_fractional_numbers_are_not_move_values(self):
        with pytest.raises(ChainProtocolError, match="integer"):
            value_to_python(pb.Value(number_value=1.5))

    def test_depth_is_capped(self):
        deep: object = "x"
        for _ in range(MAX_VALUE_DEPTH + 2):
            deep = [deep]
        with pytest.raises(ValueError):
            python_to_value(deep)
        nested = pb.Value(string_value="x")
        for _ in range(MAX_VALUE_DEPTH + 2):
            nested = pb.Value(list_value=pb.ListValue(values=[nested]))
        with pytest.raises(ChainProtocolError, match="deeply"):
            value_to_python(nested)


class _Misbehaving:
    """A LedgerService whose GetEpoch fails with a chosen status, or answers with a huge message."""

    def __init__(self, status: Status | None) -> None:
        self.status = status

    def __mapping__(self):
        return {"/sui.rpc.v2.LedgerService/GetEpoch": Handler(self.get_epoch, Cardinality.UNARY_UNARY,
                                                               v2.GetEpochRequest, v2.GetEpochResponse)}

    async def get_epoch(self, stream) -> None:
        await stream.recv_message()
        if self.status is not None:
            raise GRPCError(self.status, "injected")
        await stream.send_message(v2.GetEpochResponse(epoch=v2.Epoch(epoch=1, reference_gas_price=1000,
                                                                     protocol_config=v2.ProtocolConfig(
                                                                         protocol_version=1,
                                                                         attributes={"k" * 100: "v" * 2000}))))


async def _serve(status: Status | None):
    server = Server([_Misbehaving(status)])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    await server.start(sock=sock)
    return server, f"http://127.0.0.1:{sock.getsockname()[1]}"


class TestErrors:
    @pytest.mark.parametrize(("status", "error"), [
        (Status.UNAVAILABLE, ChainUnavailable), (Status.DEADLINE_EXCEEDED, ChainUnavailable),
        (Status.RESOURCE_EXHAUSTED, ChainUnavailable), (Status.INVALID_ARGUMENT, ChainProtocolError),
        (Status.UNIMPLEMENTED, ChainProtocolError),
    ])
    async def test_status_mapping(self, status, error):
        server, url = await _serve(status)
        reader = GrpcChainReader(url)
        try:
            with pytest.raises(error, match="GetEpoch"):
                await reader.gas_price()
        finally:
            await reader.aclose()
            server.close()
            await server.wait_closed()

    async def test_oversized_answer_is_refused(self):
        server, url = await _serve(None)
        reader = GrpcChainReader(url, limits=GrpcLimits(max_message_bytes=512))
        try:
            with pytest.raises(ChainProtocolError, match="exceeds the cap"):
                await reader.gas_price()
        finally:
            await reader.aclose()
            server.close()
            await server.wait_closed()

    async def test_unreachable_node(self):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        reader = GrpcChainReader(f"http://127.0.0.1:{port}", limits=GrpcLimits(timeout_seconds=2))
        try:
            with pytest.raises(ChainUnavailable, match="unreachable"):
                await reader.gas_price()
        finally:
            await reader.aclose()
