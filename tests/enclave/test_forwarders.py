"""Loopback forwarders inside the enclave: planning rules and a real byte-exact copy into a unix tunnel."""

from __future__ import annotations

import asyncio
import socket

import pytest

from enclave.egress import EgressAllowlist
from enclave.egress_forwarders import ForwarderError, plan_forwarders, running_forwarders
from tests.tcp_sockets import accepted_on


def resolver(table):
    return lambda host: table.get(host, [])


class TestPlanForwarders:
    def test_refuses_a_public_ip_literal(self):
        with pytest.raises(ForwarderError, match="outside loopback"):
            plan_forwarders(EgressAllowlist.parse("8.8.8.8:443=unix:/t/a.sock"))

    def test_refuses_a_name_that_resolves_outside_loopback(self):
        allowlist = EgressAllowlist.parse("api.openai.com:443=unix:/t/a.sock")
        with pytest.raises(ForwarderError, match="127.0.0.2 api.openai.com"):
            plan_forwarders(allowlist, resolve=resolver({"api.openai.com": ["104.18.7.192", "127.0.0.2"]}))

    def test_refuses_an_unresolvable_name(self):
        with pytest.raises(ForwarderError, match="not only loopback"):
            plan_forwarders(EgressAllowlist.parse("nowhere.test:443=unix:/t/a.sock"), resolve=resolver({}))

    def test_refuses_two_destinations_on_one_listener(self):
        allowlist = EgressAllowlist.parse("a.test:443=unix:/t/a.sock,b.test:443=unix:/t/b.sock")
        with pytest.raises(ForwarderError, match="both map to 127.0.0.2:443"):
            plan_forwarders(allowlist, resolve=resolver({"a.test": ["127.0.0.2"], "b.test": ["127.0.0.2"]}))

    def test_loopback_literal_listens_on_itself_and_names_on_their_hosts_entry(self):
        allowlist = EgressAllowlist.parse("127.0.0.1:9000=unix:/t/a.sock,api.openai.com:443=vsock:3:8101")
        plan = {f.destination: f for f in plan_forwarders(allowlist, resolve=resolver({"api.openai.com": ["127.0.0.3"]}))}
        assert (plan["127.0.0.1:9000"].listen.host, plan["127.0.0.1:9000"].listen.port) == ("127.0.0.1", 9000)
        assert (plan["api.openai.com:443"].listen.host, plan["api.openai.com:443"].listen.port) == ("127.0.0.3", 443)
        assert str(plan["api.openai.com:443"].tunnel) == "vsock:3:8101"


class TestRunningForwarders:
    async def test_copies_bytes_exactly_into_the_tunnel_and_back(self, tmp_path):
        received = bytearray()

        async def tunnel_end(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            data = await reader.readexactly(5)
            received.extend(data)
            writer.write(data[::-1])
            await writer.drain()
            writer.close()

        tunnel_path = str(tmp_path / "tunnel.sock")
        server = await asyncio.start_unix_server(tunnel_end, path=tunnel_path)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        allowlist = EgressAllowlist.parse(f"127.0.0.1:{port}=unix:{tunnel_path}")
        try:
            async with running_forwarders(allowlist) as plan:
                assert [f.destination for f in plan] == [f"127.0.0.1:{port}"]
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(b"hello")
                await writer.drain()
                assert await asyncio.wait_for(reader.read(), 5) == b"olleh"
                writer.close()
            assert bytes(received) == b"hello"
            with pytest.raises(OSError):  # the listener is gone once the block ends
                await asyncio.open_connection("127.0.0.1", port)
        finally:
            server.close()
            await server.wait_closed()

    async def test_listener_conflict_refuses_boot(self, tmp_path):
        with socket.socket() as busy:
            busy.bind(("127.0.0.1", 0))
            busy.listen()
            port = busy.getsockname()[1]
            allowlist = EgressAllowlist.parse(f"127.0.0.1:{port}=unix:{tmp_path / 't.sock'}")
            with pytest.raises(ForwarderError, match="egress forwarders"):
                async with running_forwarders(allowlist):
                    pass

    async def test_accepted_connections_have_nagle_off(self, tmp_path):
        """asyncpg, redis and httpx inside the enclave dial these listeners; each answer's later small writes
        must not wait for the client's delayed ACK (40 ms a round trip on Linux; issue #11)."""

        async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(await reader.readexactly(4))
            await writer.drain()
            writer.close()

        tunnel_path = str(tmp_path / "tunnel.sock")
        server = await asyncio.start_unix_server(echo, path=tunnel_path)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        try:
            async with running_forwarders(EgressAllowlist.parse(f"127.0.0.1:{port}=unix:{tunnel_path}")):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(b"ping")
                assert await asyncio.wait_for(reader.readexactly(4), 5) == b"ping"
                accepted = accepted_on(port)
                writer.close()
                assert len(accepted) == 1 and accepted[0].no_delay
        finally:
            server.close()
            await server.wait_closed()
