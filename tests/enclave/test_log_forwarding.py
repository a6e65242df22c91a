"""Enclave logs reach the parent's log receiver as JSON, without secrets or payloads."""

from __future__ import annotations

import asyncio
import io
import json
import logging

from enclave.log_forwarding import MAX_MESSAGE_CHARACTERS, ParentLogHandler, Redactions
from host_proxy.addresses import UnixEndpoint
from host_proxy.host_services import LogReceiver

SECRET = "sk-live-" + "7" * 32
MEMORY = "my bank PIN is 4921 and I hide the spare key under the mat"


async def received_lines(receiver: LogReceiver, output: io.StringIO, count: int) -> list[dict]:
    for _ in range(200):
        if receiver.lines >= count:
            break
        await asyncio.sleep(0.02)
    return [json.loads(line) for line in output.getvalue().splitlines()]


async def test_lines_reach_the_host_redacted_and_without_payloads(tmp_path):
    output = io.StringIO()
    receiver = LogReceiver(UnixEndpoint(str(tmp_path / "logs.sock")), output=output)
    await receiver.start()
    redactions = Redactions()
    handler = ParentLogHandler(redactions)
    log = logging.getLogger("memwal.test.forwarding")
    log.addHandler(handler)
    log.propagate = False
    log.setLevel(logging.INFO)
    forwarding = asyncio.create_task(handler.forward(UnixEndpoint(str(tmp_path / "logs.sock"))))
    try:
        redactions.add([SECRET, "ab"])  # values this short are not redacted (they would hit ordinary words)
        log.info("relayer ready")
        log.warning("upstream refused key %s", SECRET)
        try:
            raise ValueError(f"could not embed {MEMORY!r}")
        except ValueError:
            log.exception("remember job failed")
        log.info("x" * (MAX_MESSAGE_CHARACTERS + 500))
        lines = await received_lines(receiver, output, 4)
    finally:
        forwarding.cancel()
        await asyncio.gather(forwarding, return_exceptions=True)
        log.removeHandler(handler)
        await receiver.close()
    text = output.getvalue()
    assert SECRET not in text and "PIN" not in text and "4921" not in text
    assert [line["message"] for line in lines[:3]] == ["relayer ready", "upstream refused key [redacted]", "remember job failed"]
    assert all(line["source"] == "enclave" and line["logger"] == "memwal.test.forwarding" for line in lines)
    assert lines[2]["exception"]["type"] == "ValueError"
    assert lines[2]["exception"]["frames"][-1].startswith("test_log_forwarding.py:")
    assert len(lines[3]["message"]) < MAX_MESSAGE_CHARACTERS + 50 and lines[3]["message"].endswith("characters cut]")


async def test_a_parent_that_does_not_read_costs_lines_not_memory():
    handler = ParentLogHandler(Redactions(), max_lines=3)
    log = logging.getLogger("memwal.test.bounded")
    log.addHandler(handler)
    log.propagate = False
    log.setLevel(logging.INFO)
    try:
        for number in range(10):
            log.info("line %d", number)
    finally:
        log.removeHandler(handler)
    lines = handler._take()
    assert "7 log line(s) dropped" in lines[0]
    assert [json.loads(line)["message"] for line in lines[1:]] == ["line 7", "line 8", "line 9"]


async def test_the_receiver_drops_what_is_not_a_json_object(tmp_path):
    output = io.StringIO()
    receiver = LogReceiver(UnixEndpoint(str(tmp_path / "logs.sock")), output=output)
    await receiver.start()
    try:
        _, writer = await asyncio.open_unix_connection(str(tmp_path / "logs.sock"))
        writer.write(b'not json\n[1, 2]\n{"message": "ok"}\n')
        await writer.drain()
        lines = await received_lines(receiver, output, 1)
        writer.close()
    finally:
        await receiver.close()
    assert lines == [{"message": "ok", "source": "enclave"}] and receiver.dropped == 2
