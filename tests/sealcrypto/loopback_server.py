"""Test helper: serve an ASGI app with hypercorn on a loopback socket whose port the kernel picks."""

import asyncio
import contextlib
import socket

from hypercorn.asyncio import serve
from hypercorn.config import Config


@contextlib.asynccontextmanager
async def real_server(app):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    port = sock.getsockname()[1]
    config = Config()
    config.bind = [f"fd://{sock.detach()}"]
    config.accesslog = None
    config.graceful_timeout = 1.0
    stop = asyncio.Event()
    task = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
