"""Egress through a unix-socket tunnel (a tiny forwarder standing in for host_proxy) to a TLS upstream
whose certificate comes from a test CA: TLS is validated inside against the real hostname."""

from __future__ import annotations

import asyncio
import ssl
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from enclave.egress import EgressAllowlist, EgressTransport
from enclave.errors import EgressDenied
from host_proxy.addresses import VsockEndpoint

NOW = datetime.now(UTC)


def issue(subject: str, key, issuer_name=None, issuer_key=None, *, ca: bool, san: str | None = None):
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder().subject_name(name).issuer_name(issuer_name or name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(NOW - timedelta(hours=1))
        .not_valid_after(NOW + timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )  # fmt: skip
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        ).add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    else:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(san)]), critical=False).add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
    return builder.sign(issuer_key or key, hashes.SHA256())


@pytest.fixture(scope="module")
def test_ca(tmp_path_factory):
    directory = tmp_path_factory.mktemp("egress-ca")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = issue("egress test CA", ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = issue("upstream.test", server_key, ca.subject, ca_key, ca=False, san="upstream.test")
    (directory / "server.pem").write_bytes(server.public_bytes(serialization.Encoding.PEM))
    (directory / "server.key").write_bytes(
        server_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())
    )
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(directory / "server.pem", directory / "server.key")
    client_context = ssl.create_default_context(cadata=ca.public_bytes(serialization.Encoding.PEM).decode())
    return server_context, client_context


async def handle_upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    request = await reader.readuntil(b"\r\n\r\n")
    line = request.split(b"\r\n")[0].decode()
    body = f"upstream saw: {line}".encode()
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % len(body) + body)
    await writer.drain()
    writer.close()


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    finally:
        writer.close()


@pytest.fixture
async def tunnel(test_ca, tmp_path):
    """TLS upstream on TCP + a unix-socket forwarder to it; yields the forwarder's path and a connection log."""
    server_context, _ = test_ca
    upstream = await asyncio.start_server(handle_upstream, "127.0.0.1", 0, ssl=server_context)
    port = upstream.sockets[0].getsockname()[1]
    forwarded: list[int] = []

    async def forward(reader, writer):
        forwarded.append(1)
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", port)
        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer), return_exceptions=True)

    path = str(tmp_path / "tunnel.sock")
    forwarder = await asyncio.start_unix_server(forward, path)
    try:
        yield path, forwarded
    finally:
        for server in (forwarder, upstream):
            server.close()
            await server.wait_closed()


class TestAllowlistParsing:
    def test_parses_unix_and_vsock(self):
        allowlist = EgressAllowlist.parse("api.openai.com:443=vsock:3:8101, Fullnode.test:443=unix:/run/sui.sock")
        assert allowlist.destinations() == ("api.openai.com:443", "fullnode.test:443")
        assert allowlist.tunnel_for("API.openai.com", 443) == VsockEndpoint(3, 8101)
        assert str(allowlist.tunnel_for("fullnode.test", 443)) == "unix:/run/sui.sock"

    def test_text_form_reads_back(self):
        allowlist = EgressAllowlist.parse("b.test:443=tcp:10.0.2.2:8102,a.test:443=unix:/run/a.sock")
        assert EgressAllowlist.parse(allowlist.text()).text() == allowlist.text()
        assert allowlist.text() == "a.test:443=unix:/run/a.sock,b.test:443=tcp:10.0.2.2:8102"

    @pytest.mark.parametrize(
        ("transport", "tunnel"),
        [("vsock", "vsock:3:8101"), ("unix:/run/enclave", "unix:/run/enclave/port-8101.sock"), ("tcp:10.0.2.2", "tcp:10.0.2.2:8101")],
    )
    def test_from_the_document_through_each_transport(self, transport, tunnel):
        from host_proxy.channels import EnclaveChannels

        from .conftest import document_for

        document = document_for()
        allowlist = EgressAllowlist.from_document(document, EnclaveChannels.parse(transport))
        assert allowlist.destinations() == tuple(sorted(route.destination for route in document.egress))
        first = document.egress[0]
        assert str(allowlist.tunnel_for(first.host, first.port)) == tunnel

    @pytest.mark.parametrize(
        "text",
        ["a.test", "a.test:443", "a.test:0=unix:/x", "a.test:443=ftp:1.2.3.4:5", "a.test:443=vsock:3", "a.test:443=unix:x",
         "a.test:443=unix:/x,a.test:443=unix:/y", "a b:443=unix:/x", "a.test:99999=unix:/x"],
    )  # fmt: skip
    def test_refuses_malformed(self, text):
        with pytest.raises(ValueError):
            EgressAllowlist.parse(text)


class TestEgressTransport:
    async def test_refuses_a_host_not_on_the_allowlist(self, test_ca, tunnel):
        path, forwarded = tunnel
        transport = EgressTransport(EgressAllowlist.parse(f"upstream.test:443=unix:{path}"), ssl_context=test_ca[1])
        async with httpx.AsyncClient(transport=transport) as http:
            with pytest.raises(EgressDenied, match="evil.test:443 is not on the enclave's allowlist"):
                await http.get("https://evil.test/")
            with pytest.raises(httpx.ConnectError):  # callers that handle upstream outages handle this too
                await http.get("https://upstream.test:8443/")
            with pytest.raises(EgressDenied, match="scheme"):
                await http.get("ftp://upstream.test/")
        assert forwarded == []

    async def test_allowed_host_goes_through_the_tunnel_with_tls_checked_inside(self, test_ca, tunnel):
        path, forwarded = tunnel
        transport = EgressTransport(EgressAllowlist.parse(f"upstream.test:443=unix:{path}"), ssl_context=test_ca[1])
        async with httpx.AsyncClient(transport=transport) as http:
            response = await http.get("https://upstream.test/v1/models?x=1")
        assert response.status_code == 200
        assert response.text == "upstream saw: GET /v1/models?x=1 HTTP/1.1"
        assert forwarded == [1]

    async def test_wrong_hostname_fails_tls_even_through_an_allowed_tunnel(self, test_ca, tunnel):
        path, forwarded = tunnel
        allowlist = EgressAllowlist.parse(f"impostor.test:443=unix:{path}")
        async with httpx.AsyncClient(transport=EgressTransport(allowlist, ssl_context=test_ca[1])) as http:
            with pytest.raises(httpx.ConnectError, match="(?i)certificate"):
                await http.get("https://impostor.test/")
        assert forwarded == [1]

    async def test_untrusted_upstream_certificate_fails(self, tunnel):
        path, _ = tunnel
        allowlist = EgressAllowlist.parse(f"upstream.test:443=unix:{path}")
        async with httpx.AsyncClient(transport=EgressTransport(allowlist)) as http:  # public roots only
            with pytest.raises(httpx.ConnectError, match="(?i)certificate"):
                await http.get("https://upstream.test/")

    async def test_dead_tunnel_is_a_connect_error(self, tmp_path):
        allowlist = EgressAllowlist.parse(f"upstream.test:443=unix:{tmp_path / 'missing.sock'}")
        async with httpx.AsyncClient(transport=EgressTransport(allowlist)) as http:
            with pytest.raises(httpx.ConnectError, match="tunnel unix:"):
                await http.get("https://upstream.test/")


class TestThroughHostProxy:
    """The same path with the real host_proxy process as the host side of the tunnel."""

    async def test_allowed_host_through_host_proxy(self, test_ca, tmp_path):
        import os
        import sys

        server_context, client_context = test_ca
        upstream = await asyncio.start_server(handle_upstream, "127.0.0.1", 0, ssl=server_context)
        port = upstream.sockets[0].getsockname()[1]
        path = str(tmp_path / "egress.sock")
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "host_proxy", "--egress", f"unix:{path}=tcp:127.0.0.1:{port}",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            deadline = asyncio.get_running_loop().time() + 60  # a loaded machine may take seconds to import it
            while process.returncode is None and asyncio.get_running_loop().time() < deadline:
                if os.path.exists(path):
                    try:  # the socket file exists a moment before it listens
                        _, probe = await asyncio.open_unix_connection(path)
                    except OSError:
                        pass
                    else:
                        probe.close()
                        break
                await asyncio.sleep(0.02)
            if process.returncode is not None:
                pytest.fail(f"host_proxy exited: {(await process.stderr.read()).decode()[-500:]}")
            allowlist = EgressAllowlist.parse(f"upstream.test:443=unix:{path}")
            async with httpx.AsyncClient(transport=EgressTransport(allowlist, ssl_context=client_context)) as http:
                response = await http.get("https://upstream.test/through-host-proxy")
                with pytest.raises(EgressDenied):
                    await http.get(f"https://127.0.0.1:{port}/")
            assert response.text == "upstream saw: GET /through-host-proxy HTTP/1.1"
        finally:
            process.terminate()
            await process.wait()
            upstream.close()
            await upstream.wait_closed()
