"""Boot step (1): fetch the enclave document from the parent over the configuration channel.

The parent's host proxy serves one frame (``manifest.channel``) on ``manifest.CONFIGURATION_PORT``. Until
it answers, the runtime logs :data:`WAIT_MESSAGE` (the boot test looks for it), retries with a bounded
back-off and waits as long as it takes: an enclave may well start before its host proxy.

* A channel that cannot be reached, closes early or stalls is retried.
* A frame that arrives complete but does not hold a valid document raises ``ManifestError``: the
  runtime refuses to boot rather than guess, and the message says which key is wrong.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from host_proxy.addresses import Endpoint, connect_stream
from host_proxy.channels import EnclaveChannels
from host_proxy.errors import ConnectError
from manifest import CONFIGURATION_PORT, EnclaveDocument, FrameReader, parse_enclave_document

logger = logging.getLogger("memwal.enclave.configuration")

# The boot test asserts this line; on Nitro it reads
# "waiting for configuration from the parent over vsock (cid 3, port 7000)".
WAIT_MESSAGE = "waiting for configuration from the parent over {channel}"
READ_CHUNK_BYTES = 16 * 1024


@dataclass(frozen=True)
class Backoff:
    """Delays between attempts: ``initial``, doubling up to ``maximum`` seconds; a reminder every ``remind``."""

    initial_seconds: float = 0.25
    maximum_seconds: float = 5.0
    connect_timeout_seconds: float = 5.0
    read_timeout_seconds: float = 10.0
    remind_seconds: float = 60.0


async def fetch_enclave_document(channels: EnclaveChannels, *, backoff: Backoff = Backoff()) -> EnclaveDocument:
    """Wait for the parent's configuration frame and return the validated document (or raise ManifestError)."""
    channel = channels.describe(CONFIGURATION_PORT)
    endpoint = channels.to_parent(CONFIGURATION_PORT)
    logger.info(WAIT_MESSAGE.format(channel=channel))
    delay = backoff.initial_seconds
    reminded = time.monotonic()
    attempts = 0
    while True:
        attempts += 1
        raw, failure = await _read_frame(endpoint, backoff)
        if raw is not None:
            document = parse_enclave_document(raw)
            logger.info("configuration received after %d attempt(s): sha384 %s", attempts, document.digest().hex())
            return document
        if time.monotonic() - reminded >= backoff.remind_seconds:
            logger.info("%s (still; last attempt: %s)", WAIT_MESSAGE.format(channel=channel), failure)
            reminded = time.monotonic()
        else:
            logger.debug("configuration channel attempt %d: %s", attempts, failure)
        await asyncio.sleep(delay)
        delay = min(delay * 2, backoff.maximum_seconds)


async def _read_frame(endpoint: Endpoint, backoff: Backoff) -> tuple[bytes | None, str]:
    """One attempt: the complete frame's document, or None and why not. A malformed frame raises."""
    try:
        reader, writer = await connect_stream(endpoint, timeout=backoff.connect_timeout_seconds)
    except ConnectError as error:
        return None, str(error)
    frame = FrameReader()
    try:
        async with asyncio.timeout(backoff.read_timeout_seconds):
            while frame.document is None:
                data = await reader.read(min(frame.wanted, READ_CHUNK_BYTES))
                if not data:
                    return None, "the parent closed the channel before a complete frame"
                frame.feed(data)
    except TimeoutError:
        return None, f"no complete frame within {backoff.read_timeout_seconds:g} s"
    except OSError as error:
        return None, f"read failed: {error.strerror or error}"
    finally:
        writer.close()
    return frame.document, ""
