import hashlib
import json

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from attestation.provisioning import (
    HEADER_SIZE,
    EnvelopeError,
    load_secrets_file,
    open_envelope,
    seal_secrets,
)
from attestation.testing import deterministic_rng
from enclave.provisioning import IssuedDocuments

from .conftest import RelayerStarter, make_runtime

RECIPIENT = X25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
RECIPIENT_PUBLIC = RECIPIENT.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
DOCUMENT_SHA = hashlib.sha256(b"document").digest()
SECRETS = {"OPENAI_API_KEY": "sk-test", "DATABASE_URL": "postgres://relayer:pa55@db/memwal"}


def sealed(secrets=SECRETS, document_sha256=DOCUMENT_SHA, recipient=RECIPIENT_PUBLIC) -> bytes:
    return seal_secrets(secrets, recipient_public_key=recipient, document_sha256=document_sha256,
                        rng=deterministic_rng(b"seal"))  # fmt: skip


class TestEnvelope:
    def test_round_trip(self):
        opened = open_envelope(sealed(), recipient_private_key=RECIPIENT)
        assert dict(opened.secrets) == SECRETS
        assert opened.document_sha256 == DOCUMENT_SHA
        assert "pa55" not in repr(opened) and "sk-test" not in repr(opened)

    def test_layout(self):
        envelope = sealed()
        assert envelope[:4] == b"MWP1"
        assert envelope[36:68] == DOCUMENT_SHA
        plaintext = json.dumps(SECRETS, sort_keys=True, separators=(",", ":")).encode()
        assert len(envelope) == HEADER_SIZE + len(plaintext) + 16
        assert b"sk-test" not in envelope

    @pytest.mark.parametrize("position", [0, 5, 40, 70, HEADER_SIZE + 1, -1])
    def test_any_flipped_byte_is_refused(self, position):
        envelope = bytearray(sealed())
        envelope[position] ^= 0x01
        with pytest.raises(EnvelopeError):
            open_envelope(bytes(envelope), recipient_private_key=RECIPIENT)

    def test_document_hash_is_bound(self):
        envelope = bytearray(sealed())
        envelope[36:68] = hashlib.sha256(b"another document").digest()
        with pytest.raises(EnvelopeError):
            open_envelope(bytes(envelope), recipient_private_key=RECIPIENT)

    def test_other_recipient_cannot_open(self):
        with pytest.raises(EnvelopeError):
            open_envelope(sealed(), recipient_private_key=X25519PrivateKey.generate())

    @pytest.mark.parametrize("raw", [b"", b"MWP1", b"MWP2" + bytes(200), bytes(70_000)])
    def test_malformed_is_refused(self, raw):
        with pytest.raises(EnvelopeError):
            open_envelope(raw, recipient_private_key=RECIPIENT)

    def test_small_order_recipient_key_is_refused(self):
        with pytest.raises(ValueError):
            sealed(recipient=bytes(32))

    @pytest.mark.parametrize("secrets", [{}, {"PATH": "/bin"}, {"OPENAI_API_KEY": ""}, {"OPENAI_API_KEY": "a\x00b"}])
    def test_only_allowlisted_non_empty_secrets(self, secrets):
        with pytest.raises(ValueError):
            sealed(secrets)


class TestSecretsFile:
    def test_json_and_dotenv(self):
        assert load_secrets_file(b'{"OPENAI_API_KEY": "sk"}') == {"OPENAI_API_KEY": "sk"}
        assert load_secrets_file(b"# comment\nOPENAI_API_KEY=sk=1\n\nREDIS_URL = redis://x\n") == {
            "OPENAI_API_KEY": "sk=1", "REDIS_URL": "redis://x"}  # fmt: skip

    @pytest.mark.parametrize("data", [b"[1]", b"{bad", b"NOPE", b"OPENAI_API_KEY=a\nOPENAI_API_KEY=b", b"HOME=/root"])
    def test_refuses(self, data):
        with pytest.raises(ValueError):
            load_secrets_file(data)


class TestIssuedDocuments:
    def test_expires_and_is_bounded(self):
        now = [0.0]
        issued = IssuedDocuments(clock=lambda: now[0])
        issued.record(b"doc")
        assert hashlib.sha256(b"doc").digest() in issued
        now[0] = 601.0
        assert hashlib.sha256(b"doc").digest() not in issued
        for number in range(1100):
            issued.record(str(number).encode())
        assert hashlib.sha256(b"0").digest() not in issued
        assert hashlib.sha256(b"1099").digest() in issued


async def fetch_document(http) -> bytes:
    response = await http.get("/attestation?nonce=0102")
    assert response.status_code == 200
    return response.content


class TestProvisionRoute:
    @pytest.fixture
    def starter(self):
        return RelayerStarter()

    @pytest.fixture
    def runtime(self, tee_pki, starter):
        return make_runtime(tee_pki, starter=starter)

    @pytest.fixture
    async def http(self, runtime):
        transport = httpx.ASGITransport(app=runtime.app)
        async with httpx.AsyncClient(transport=transport, base_url="https://enclave.test") as client:
            yield client

    def envelope_for(self, runtime, document: bytes, secrets=SECRETS) -> bytes:
        return seal_secrets(secrets, recipient_public_key=runtime.identity.provisioning_public_key,
                            document_sha256=hashlib.sha256(document).digest())  # fmt: skip

    async def test_unprovisioned_api_is_503(self, http):
        response = await http.post("/api/remember", json={"text": "x"})
        assert response.status_code == 503
        assert response.json() == {"error": "enclave not provisioned"}
        assert "x-enclave-signature" in response.headers
        health = (await http.get("/health")).json()
        assert health["enclave"]["provisioned"] is False

    async def test_provision_once_then_relayer_starts_with_merged_environment(self, runtime, http, starter):
        import asyncio
        from contextlib import AsyncExitStack

        document = await fetch_document(http)
        async with AsyncExitStack() as stack:
            relayer = asyncio.create_task(runtime.run_relayer(stack, asyncio.Event()))
            response = await http.post("/provision", content=self.envelope_for(runtime, document))
            assert response.status_code == 202
            await asyncio.wait_for(relayer, 5)
        settings, environment = starter.calls[0]
        assert environment["OPENAI_API_KEY"] == "sk-test"
        assert settings.database_url == SECRETS["DATABASE_URL"]
        assert settings.openai_api_key.reveal() == "sk-test"
        assert (await http.post("/api/echo", content=b"hi")).json()["echo"] == "hi"
        second = await http.post("/provision", content=self.envelope_for(runtime, document))
        assert (second.status_code, second.json()) == (409, {"error": "already provisioned"})

    async def test_operator_metrics_socket_serves_only_the_relayers_metrics(self, runtime, http, starter):
        import asyncio
        from contextlib import AsyncExitStack

        from relayer.observability import Metrics

        metrics = Metrics()
        metrics.errors.labels("probe", "/api/x").inc()

        async def start_with_metrics(*arguments):
            app = await starter(*arguments)
            app.state.metrics = metrics
            return app

        runtime._relayer_starter = start_with_metrics
        operator = httpx.AsyncClient(transport=httpx.ASGITransport(app=runtime._metrics), base_url="http://operator")
        async with operator:
            assert (await operator.get("/metrics")).status_code == 503  # no relayer yet
            document = await fetch_document(http)
            async with AsyncExitStack() as stack:
                relayer = asyncio.create_task(runtime.run_relayer(stack, asyncio.Event()))
                assert (await http.post("/provision", content=self.envelope_for(runtime, document))).status_code == 202
                await asyncio.wait_for(relayer, 5)
            served = await operator.get("/metrics")
            assert served.status_code == 200 and 'memwal_errors_total{kind="probe",route="/api/x"} 1.0' in served.text
        assert (await http.get("/metrics")).status_code == 404  # the client port (TLS ingress) has no metrics

    async def test_replayed_envelope_is_refused(self, runtime, http):
        document = await fetch_document(http)
        envelope = self.envelope_for(runtime, document)
        assert (await http.post("/provision", content=envelope)).status_code == 202
        assert (await http.post("/provision", content=envelope)).status_code == 409

    async def test_document_not_issued_by_this_boot_is_403(self, runtime, http):
        response = await http.post("/provision", content=self.envelope_for(runtime, b"some other document"))
        assert (response.status_code, response.json()) == (403, {"error": "unknown attestation document"})
        assert (await http.get("/health")).json()["enclave"]["provisioned"] is False

    async def test_bad_envelope_is_400_and_does_not_consume_the_shot(self, runtime, http):
        document = await fetch_document(http)
        tampered = bytearray(self.envelope_for(runtime, document))
        tampered[-1] ^= 1
        response = await http.post("/provision", content=bytes(tampered))
        assert (response.status_code, response.json()) == (400, {"error": "invalid provisioning envelope"})
        assert (await http.post("/provision", content=self.envelope_for(runtime, document))).status_code == 202

    async def test_envelope_for_another_enclave_is_400(self, http):
        document = await fetch_document(http)
        envelope = seal_secrets(SECRETS, recipient_public_key=RECIPIENT_PUBLIC,
                                document_sha256=hashlib.sha256(document).digest())  # fmt: skip
        assert (await http.post("/provision", content=envelope)).status_code == 400

    async def test_oversized_envelope_is_413(self, http):
        assert (await http.post("/provision", content=bytes(70_000))).status_code == 413
