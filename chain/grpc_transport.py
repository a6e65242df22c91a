"""The plumbing under ``chain.grpc``: channels, a size-capped codec, error mapping, protobuf JSON values.

Messages are pysui's generated ``sui.rpc.v2`` classes (betterproto2) carried by grpclib; nothing here
hand-writes protobuf. grpclib has no maximum message size, so ``CappedCodec`` refuses to decode a
message larger than the cap (the per-call deadline bounds how long a server can stream at us).

Errors map like ``chain.http_transport``: UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED,
transport and HTTP/2 failures → ``ChainUnavailable``; NOT_FOUND → ``ObjectNotFound``; anything else,
and any answer we cannot decode → ``ChainProtocolError``.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import betterproto2
import grpclib.client
import grpclib.exceptions
from grpclib.const import Status
from grpclib.encoding.base import CodecBase
from pysui.sui.sui_grpc.suimsgs.google import protobuf as pb

from chain.errors import ChainError, ChainProtocolError, ChainUnavailable, ObjectNotFound

MAX_MESSAGE_BYTES = 8 * 1024 * 1024  # as chain.http_transport: a 50-object page with JSON is far below
DEFAULT_TIMEOUT_SECONDS = 15.0
MAX_VALUE_DEPTH = 64  # the node itself caps Move values at 80 proto levels; we need far fewer
HTTPS_PORT = 443
_TRANSIENT = frozenset({Status.UNAVAILABLE, Status.DEADLINE_EXCEEDED, Status.RESOURCE_EXHAUSTED, Status.ABORTED})
_Result = TypeVar("_Result")


class MessageTooLarge(ValueError):
    """A gRPC message exceeded ``MAX_MESSAGE_BYTES``."""


@dataclass(frozen=True)
class GrpcLimits:
    max_message_bytes: int = MAX_MESSAGE_BYTES
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS


DEFAULT_GRPC_LIMITS = GrpcLimits()


@dataclass(frozen=True)
class GrpcTarget:
    """Where a gRPC URL points: ``https://host[:port]`` (TLS) or ``http://host:port`` (plaintext h2c)."""

    host: str
    port: int
    tls: bool

    @classmethod
    def from_url(cls, url: str) -> GrpcTarget:
        parts = urlsplit(url if "://" in url else f"https://{url}")
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError(f"a Sui gRPC URL is https://host[:port] or http://host:port, not {url!r}")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError("a Sui gRPC URL has no path, query or fragment")
        tls = parts.scheme == "https"
        if not tls and parts.port is None:
            raise ValueError("a plaintext (http://) Sui gRPC URL needs an explicit port")
        return cls(parts.hostname, parts.port or HTTPS_PORT, tls)


class CappedCodec(CodecBase):
    """Protobuf (betterproto2) encoding with a decode size cap."""

    __content_subtype__ = "proto"

    def __init__(self, max_message_bytes: int) -> None:
        self._max = max_message_bytes

    def encode(self, message: Any, message_type: Any) -> bytes:
        if not isinstance(message, message_type):
            raise TypeError(f"expected {message_type.__name__}, got {type(message).__name__}")
        return bytes(message)

    def decode(self, data: bytes, message_type: Any) -> Any:
        if len(data) > self._max:
            raise MessageTooLarge(f"gRPC message of {len(data)} bytes exceeds the cap of {self._max}")
        return message_type.parse(data)


def open_channel(target: GrpcTarget, limits: GrpcLimits) -> grpclib.client.Channel:
    """A lazily connecting channel; call it inside the event loop that will use it."""
    context: ssl.SSLContext | None = None
    if target.tls:
        context = ssl.create_default_context(purpose=ssl.Purpose.SERVER_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.set_alpn_protocols(["h2"])
    return grpclib.client.Channel(
        target.host, target.port, ssl=context, codec=CappedCodec(limits.max_message_bytes), status_details_codec=None
    )


def map_error(exc: BaseException, what: str) -> ChainError:
    """The ``chain`` error for a failed call (the one place gRPC failures are translated)."""
    if isinstance(exc, grpclib.exceptions.GRPCError):
        message = (exc.message or "")[:300]
        if exc.status in _TRANSIENT:
            return ChainUnavailable(f"{what}: gRPC {exc.status.name} {message}".rstrip())
        if exc.status is Status.NOT_FOUND:
            return ObjectNotFound(f"{what}: {message or 'not found'}")
        return ChainProtocolError(f"{what}: gRPC {exc.status.name} {message}".rstrip())
    if isinstance(exc, MessageTooLarge):
        return ChainProtocolError(f"{what}: {exc}")
    if isinstance(exc, ValueError | TypeError | KeyError):  # betterproto2 could not parse the message
        return ChainProtocolError(f"{what}: malformed gRPC message ({type(exc).__name__})")
    return ChainUnavailable(f"{what}: Sui gRPC node unreachable ({type(exc).__name__})")


_CALL_ERRORS = (
    grpclib.exceptions.GRPCError,
    grpclib.exceptions.StreamTerminatedError,
    grpclib.exceptions.ProtocolError,
    MessageTooLarge,
    OSError,
    asyncio.TimeoutError,
    ValueError,
    TypeError,
    KeyError,
)


async def unary(call: Awaitable[_Result], what: str) -> _Result:
    """Await one unary call, translating its failures."""
    try:
        return await call
    except _CALL_ERRORS as exc:
        raise map_error(exc, what) from exc


@asynccontextmanager
async def translated(what: str) -> AsyncIterator[None]:
    """Translate failures of a block that consumes a server stream."""
    try:
        yield
    except _CALL_ERRORS as exc:
        raise map_error(exc, what) from exc


def field_mask(*paths: str) -> pb.FieldMask:
    return pb.FieldMask(paths=list(paths))


def value_to_python(value: pb.Value | None, depth: int = 0) -> object:
    """``google.protobuf.Value`` (the JSON a node renders for Move values) → plain Python JSON values.

    Numbers come as doubles; Sui writes only u8/u16/u32 as numbers, so integral values become ``int``.
    """
    if depth > MAX_VALUE_DEPTH:
        raise ChainProtocolError("gRPC JSON value is nested too deeply")
    if value is None:
        return None
    kind, inner = betterproto2.which_one_of(value, "kind")
    if kind in ("", "null_value"):
        return None
    if kind == "bool_value":
        return bool(inner)
    if kind == "string_value":
        return str(inner)
    if kind == "number_value":
        number = float(inner)  # type: ignore[arg-type]
        if not number.is_integer():
            raise ChainProtocolError("gRPC JSON number is not an integer")
        return int(number)
    if kind == "list_value":
        return [value_to_python(item, depth + 1) for item in inner.values]  # type: ignore[union-attr]
    if kind == "struct_value":
        fields: Mapping[str, pb.Value] = inner.fields  # type: ignore[union-attr]
        return {key: value_to_python(item, depth + 1) for key, item in fields.items()}
    raise ChainProtocolError(f"unknown gRPC JSON value kind {kind!r}")


def python_to_value(value: object, depth: int = 0) -> pb.Value:
    """The inverse of ``value_to_python`` (the localnet renders Move values with it)."""
    if depth > MAX_VALUE_DEPTH:
        raise ValueError("JSON value is nested too deeply")
    if value is None:
        return pb.Value(null_value=pb.NullValue.NULL_VALUE)
    if isinstance(value, bool):
        return pb.Value(bool_value=value)
    if isinstance(value, int):
        return pb.Value(number_value=float(value))
    if isinstance(value, str):
        return pb.Value(string_value=value)
    if isinstance(value, list):
        return pb.Value(list_value=pb.ListValue(values=[python_to_value(item, depth + 1) for item in value]))
    if isinstance(value, Mapping):
        fields = {str(key): python_to_value(item, depth + 1) for key, item in value.items()}
        return pb.Value(struct_value=pb.Struct(fields=fields))
    raise TypeError(f"cannot render {type(value).__name__} as a protobuf Value")
