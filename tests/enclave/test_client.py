"""The attested client against the runtime serving real TLS on loopback, with the simulator."""

from __future__ import annotations

import asyncio
import hashlib
import re
import ssl
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
import pytest
from hypercorn.asyncio import serve as hypercorn_serve
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from attestation.binding import configuration_pcr
from attestation.client import AttestedClient, ChannelBindingError, pinned_ssl_context, provision_secrets
from attestation.errors import FreshnessError, PolicyError, ResponseSignatureError
from attestation.policy import PCRs
from enclave.runtime import hypercorn_tls_config
from enclave.tls_identity import generate_identity
from manifest import HostSection, Manifest
from manifest.writing import manifest_toml

from .conftest import DEBUG_PCRS, IMAGE_PCRS, listening_socket, make_runtime, real_now, serving


def connect(url, pki, *, pcrs=IMAGE_PCRS, now=real_now, **options):
    return AttestedClient.connect(url, expected_pcrs=PCRs(pcrs), trust_root=pki.trust_root(), now=now, **options)


@asynccontextmanager
async def serving_app(app, identity):
    sock, port = listening_socket()
    config, _ = hypercorn_tls_config(f"fd://{sock.detach()}", identity, {})
    shutdown = asyncio.Event()
    task = asyncio.create_task(hypercorn_serve(app, config, shutdown_trigger=shutdown.wait))
    await asyncio.sleep(0.2)
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        shutdown.set()
        await asyncio.wait_for(task, 30)


class TestAttestedClient:
    async def test_accepts_the_right_enclave_and_checks_every_response(self, tee_pki):
        runtime = make_runtime(tee_pki)
        lines: list[str] = []
        async with serving(runtime) as url, connect(url, tee_pki, observer=lines.append,
                                                    config_hash=runtime.configuration_digest) as session:  # fmt: skip
            assert session.identity_public_key == runtime.identity.signing_public_key
            assert session.enclave.binding.configuration_sha384 == runtime.configuration_digest
            assert session.enclave.certificate_der == runtime.identity.tls_certificate_der
            response = await session.http.post("/api/remember?x=1", json={"text": "hi"})
            assert (response.status_code, response.json()) == (503, {"error": "enclave not provisioned"})
            # a second connection is pinned too (keep-alive off forces a new handshake)
            response = await session.http.get("/health", headers={"connection": "close"})
            assert response.status_code == 200
        assert any(line.startswith("binding:") for line in lines)

    async def test_rejects_wrong_pcrs(self, tee_pki):
        async with serving(make_runtime(tee_pki)) as url:
            with pytest.raises(PolicyError, match="PCR0 mismatch"):
                async with connect(url, tee_pki, pcrs={0: bytes.fromhex("ab" * 48)}):
                    pass

    async def test_rejects_a_debug_mode_document(self, tee_pki):
        async with serving(make_runtime(tee_pki, boot_pcrs=DEBUG_PCRS)) as url:
            with pytest.raises(PolicyError, match="debug-mode"):
                async with connect(url, tee_pki, pcrs=DEBUG_PCRS):
                    pass

    async def test_rejects_a_stale_document(self, tee_pki):
        async with serving(make_runtime(tee_pki)) as url:
            with pytest.raises(FreshnessError, match="older than"):
                async with connect(url, tee_pki, now=lambda: real_now() + timedelta(minutes=10)):
                    pass

    async def test_rejects_a_replayed_document(self, tee_pki):
        runtime = make_runtime(tee_pki)
        recorded = runtime.attester.attestation(
            user_data=runtime.user_data, nonce=b"\x01" * 32, public_key=runtime.identity.signing_public_key
        )
        runtime.attester.attestation = lambda **fields: recorded
        async with serving(runtime) as url:
            with pytest.raises(FreshnessError, match="nonce does not match"):
                async with connect(url, tee_pki):
                    pass

    async def test_rejects_a_swapped_tls_certificate(self, tee_pki):
        """A man in the middle with its own key relays /attestation: the document is genuine and fresh."""
        runtime = make_runtime(tee_pki)
        async with serving(runtime) as enclave_url:
            insecure = ssl.create_default_context()
            insecure.check_hostname = False
            insecure.verify_mode = ssl.CERT_NONE

            async def relay(request: Request) -> Response:
                async with httpx.AsyncClient(verify=insecure) as upstream:
                    answer = await upstream.get(enclave_url + "/attestation", params=request.query_params)
                return Response(answer.content, media_type="application/cbor")

            impostor = generate_identity(hostname="enclave.test", now=real_now())
            async with serving_app(Starlette(routes=[Route("/attestation", relay)]), impostor) as mitm_url:
                with pytest.raises(ChannelBindingError, match="not the one the document binds"):
                    async with connect(mitm_url, tee_pki):
                        pass

    async def test_rejects_a_configuration_hash_mismatch(self, tee_pki):
        async with serving(make_runtime(tee_pki)) as url:
            with pytest.raises(PolicyError, match="configuration hash mismatch"):
                async with connect(url, tee_pki, config_hash=hashlib.sha384(b"another config").digest()):
                    pass

    async def test_rejects_an_unsigned_response_on_the_pinned_client(self, tee_pki):
        runtime = make_runtime(tee_pki)
        runtime.app._should_sign = lambda path: False  # a runtime that stopped signing
        async with serving(runtime) as url, connect(url, tee_pki) as session:
            with pytest.raises(ResponseSignatureError, match="not signed"):
                await session.http.get("/health")


class TestPinnedContext:
    async def test_spki_is_rechecked_even_if_the_trust_store_is_widened(self, tee_pki):
        enclave = generate_identity(hostname="enclave.test", now=real_now())
        other = generate_identity(hostname="impostor.test", now=real_now())  # distinct subject: OpenSSL finds it

        async def ok(request: Request) -> Response:
            return Response(b"ok")

        async with serving_app(Starlette(routes=[Route("/", ok)]), other) as url:
            context = pinned_ssl_context(enclave.tls_certificate_der)
            async with httpx.AsyncClient(verify=context) as http:
                with pytest.raises(httpx.ConnectError, match="(?i)certificate verify failed"):
                    await http.get(url + "/")
            context.load_verify_locations(cadata=other.tls_certificate_der)  # chain check now passes
            async with httpx.AsyncClient(verify=context) as http:
                with pytest.raises(httpx.ConnectError, match="not the attested enclave key"):
                    await http.get(url + "/")
            trusting = pinned_ssl_context(other.tls_certificate_der)
            async with httpx.AsyncClient(verify=trusting) as http:
                assert (await http.get(url + "/")).text == "ok"


class TestProvisioningOverTheAttestedChannel:
    async def test_provision_then_relayer_answers(self, tee_pki):
        runtime = make_runtime(tee_pki)
        async with serving(runtime) as url, connect(url, tee_pki) as session:
            response = await provision_secrets(session, {"OPENAI_API_KEY": "sk-test"})
            assert response.status_code == 202
            for _ in range(100):
                if (await session.http.get("/health")).json()["enclave"]["relayer"] == "ready":
                    break
                await asyncio.sleep(0.05)
            echoed = await session.http.post("/api/echo?q=1", content=b"payload")
            assert echoed.json() == {"echo": "payload", "query": "q=1"}
            again = await provision_secrets(session, {"OPENAI_API_KEY": "sk-other"})
            assert again.status_code == 409


class TestCommandLine:
    async def test_verify_url_reports_what_it_received_and_what_it_did_not_check(self, tee_pki, tmp_path, capsys):
        from attestation._cli import main

        runtime = make_runtime(tee_pki)
        (tmp_path / "pcrs.json").write_text('{"PCR0": "%s"}' % ("aa" * 48))
        (tmp_path / "root.pem").write_bytes(tee_pki.root_pem)
        async with serving(runtime) as url:
            status = await asyncio.to_thread(main, ["verify-url", url, "--test-root", str(tmp_path / "root.pem")])
            output = capsys.readouterr().out
        assert status == 0, output
        assert "channel: live TLS certificate key is the attested one" in output
        assert re.search(rf"PCR0 +{'aa' * 48}\n", output)
        assert re.search(rf"PCR16 +{configuration_pcr(runtime.configuration_digest).hex()}\n", output)
        assert re.search(rf"configuration sha384 +{runtime.configuration_digest.hex()}\n", output)
        assert re.search(r"measurements +NOT CHECKED\n", output)
        assert re.search(r"configuration +NOT CHECKED\n", output)
        assert "verified, but NOT everything was checked" in output
        assert " ok  binding" in output and "(NOT CHECKED: no configuration hash given)" in output

    async def test_config_hash_of_the_published_manifest_is_what_the_enclave_attests(self, tee_pki, tmp_path, capsys):
        from attestation._cli import main

        runtime = make_runtime(tee_pki)
        manifest = tmp_path / "manifest.toml"
        manifest.write_text(manifest_toml(Manifest(runtime.document, HostSection(enclave_cid=21))))
        assert main(["config-hash", str(manifest)]) == 0
        printed = capsys.readouterr().out.splitlines()
        assert printed[1].encode() == runtime.document.canonical_json()
        assert printed[2] == f"sha384  {runtime.configuration_digest.hex()}"
        (tmp_path / "pcrs.json").write_text('{"PCR0": "%s"}' % ("aa" * 48))
        (tmp_path / "root.pem").write_bytes(tee_pki.root_pem)
        common = ["--pcrs", str(tmp_path / "pcrs.json"), "--test-root", str(tmp_path / "root.pem")]
        async with serving(runtime) as url:
            status = await asyncio.to_thread(main, ["verify-url", url, *common, "--manifest", str(manifest)])
            output = capsys.readouterr().out
            assert status == 0, output
            assert re.search(r"configuration +ok \(a published hash\)", output)
            assert re.search(r"measurements +ok \(a published set\)", output)
            assert output.rstrip().endswith("verified, but NOT everything was checked (see above)")  # a test root
            wrong = await asyncio.to_thread(main, ["verify-url", url, *common, "--config-hash", "00" * 48])
            assert wrong == 1 and "configuration hash mismatch" in capsys.readouterr().err

    async def test_provision_needs_the_published_configuration(self, tee_pki, tmp_path, capsys):
        from attestation._cli import main

        runtime = make_runtime(tee_pki)
        (tmp_path / "pcrs.json").write_text('{"PCR0": "%s"}' % ("aa" * 48))
        (tmp_path / "root.pem").write_bytes(tee_pki.root_pem)
        (tmp_path / "secrets.env").write_text("OPENAI_API_KEY=sk-from-file\n")
        common = ["--pcrs", str(tmp_path / "pcrs.json"), "--test-root", str(tmp_path / "root.pem"),
                  "--secrets-file", str(tmp_path / "secrets.env")]  # fmt: skip
        async with serving(runtime) as url:
            refused = await asyncio.to_thread(main, ["provision", url, *common])
            assert refused == 1 and "give the published configuration" in capsys.readouterr().err
            status = await asyncio.to_thread(
                main, ["provision", url, *common, "--config-hash", runtime.configuration_digest.hex()]
            )
            captured = capsys.readouterr()
            assert status == 0, captured.err
            assert "relayer: ready" in captured.out and "sk-from-file" not in captured.out
