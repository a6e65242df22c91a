"""The AWS credentials for KMS, fetched from the parent on the credentials channel (host_proxy/credentials.py)."""

from __future__ import annotations

import asyncio

from host_proxy.addresses import Endpoint, connect_stream
from host_proxy.credentials import HEADER, MAX_FRAME_BYTES, CredentialsUnavailable, decode_frame
from host_proxy.errors import ConnectError
from memwal_common.sigv4 import AwsCredentials

from .errors import SourceUnavailable
from .kms import CredentialsProvider

TIMEOUT_SECONDS = 5.0


def parent_credentials(endpoint: Endpoint) -> CredentialsProvider:
    """A provider that asks the parent each time (they are temporary; the parent caches and renews them)."""

    async def fetch() -> AwsCredentials:
        try:
            reader, writer = await connect_stream(endpoint, timeout=TIMEOUT_SECONDS)
        except ConnectError as error:
            raise SourceUnavailable(f"credentials channel: {error}") from None
        try:
            async with asyncio.timeout(TIMEOUT_SECONDS):
                frame = await reader.read(HEADER.size + MAX_FRAME_BYTES + 1)
                while frame and len(frame) <= HEADER.size + MAX_FRAME_BYTES:
                    more = await reader.read(HEADER.size + MAX_FRAME_BYTES + 1 - len(frame))
                    if not more:
                        break
                    frame += more
            framed = decode_frame(frame)
        except (TimeoutError, OSError, CredentialsUnavailable) as error:
            raise SourceUnavailable(f"credentials channel: {type(error).__name__}: {error}") from None
        finally:
            writer.close()
        return AwsCredentials(framed.access_key_id, framed.secret_access_key, framed.token or None)

    return fetch
