"""Boot step (1): the configuration channel from the enclave's side, against parents that misbehave."""

import asyncio
import logging

import pytest

from enclave.configuration import WAIT_MESSAGE, Backoff, fetch_enclave_document
from host_proxy.channels import EnclaveChannels
from manifest import CONFIGURATION_PORT, ManifestError, encode_frame

from .conftest import document_for

FAST = Backoff(initial_seconds=0.01, maximum_seconds=0.02, connect_timeout_seconds=1, read_timeout_seconds=0.3, remind_seconds=0.05)


class Parent:
    """A parent on the Unix transport whose answer to connection number N is ``answers[N]`` (bytes, or None: stall)."""

    def __init__(self, directory, answers) -> None:
        self.path = directory / f"port-{CONFIGURATION_PORT}.sock"
        self.answers = list(answers)
        self.connections = 0

    async def __aenter__(self):
        self.server = await asyncio.start_unix_server(self.handle, path=str(self.path))
        return self

    async def __aexit__(self, *exc):
        self.server.close()
        await self.server.wait_closed()

    async def handle(self, reader, writer):
        answer = self.answers[min(self.connections, len(self.answers) - 1)]
        self.connections += 1
        if answer is None:
            await asyncio.sleep(5)  # stall: the enclave's read timeout ends it
        else:
            writer.write(answer)
            await writer.drain()
        writer.close()


async def fetch(tmp_path):
    return await asyncio.wait_for(fetch_enclave_document(EnclaveChannels.parse(f"unix:{tmp_path}"), backoff=FAST), 10)


class TestFetch:
    async def test_retries_a_closed_early_or_stalled_channel_then_takes_the_document(self, tmp_path, caplog):
        caplog.set_level(logging.DEBUG, logger="memwal.enclave")
        document = document_for()
        frame = encode_frame(document.canonical_json())
        async with Parent(tmp_path, [b"", frame[:20], None, frame]) as parent:
            assert await fetch(tmp_path) == document
        assert parent.connections == 4
        text = "\n".join(caplog.messages)
        assert "closed the channel before a complete frame" in text and "no complete frame within 0.3 s" in text
        assert "configuration received after 4 attempt(s)" in text

    async def test_reminds_while_nobody_listens(self, tmp_path, caplog):
        caplog.set_level(logging.INFO, logger="memwal.enclave")
        waiting = asyncio.create_task(fetch(tmp_path))
        await asyncio.sleep(0.3)
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        first = WAIT_MESSAGE.format(channel=f"unix:{tmp_path}/port-{CONFIGURATION_PORT}.sock")
        assert caplog.messages[0] == first
        assert any(message.startswith(first + " (still; last attempt: ") for message in caplog.messages[1:])

    @pytest.mark.parametrize(
        ("answer", "match"),
        [
            (b"HTTP/1.1 400 Bad Request\r\n\r\n", "did not start with b'MWM1' \\(wrong port\\?\\)"),
            (b"MWM1\xff\xff\xff\xff", "announces 4294967295 bytes"),
            (encode_frame(b'{"format":1,"relayer":{"DATABASE_URL":"postgres://u:p@h/d"}}'), "is a secret"),
            (encode_frame(b'{"format":1,"enclave":{"ingress_port":"8443"}}'), "ingress_port must be an integer"),
        ],
    )
    async def test_a_complete_but_bad_frame_refuses_instead_of_retrying(self, tmp_path, answer, match):
        async with Parent(tmp_path, [answer]) as parent:
            with pytest.raises(ManifestError, match=match):
                await fetch(tmp_path)
        assert parent.connections == 1
