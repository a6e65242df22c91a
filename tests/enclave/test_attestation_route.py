import base64

import httpx
import pytest

from attestation.document import AttestationDocument
from attestation.user_data import EnclaveUserData
from enclave.attestation_route import TokenBucket, parse_nonce

from .conftest import make_runtime


@pytest.fixture
def runtime(tee_pki):
    return make_runtime(tee_pki)


def client(runtime) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=runtime.app), base_url="https://enclave.test")


class TestParseNonce:
    @pytest.mark.parametrize("values", [[], ["", ], ["0"], ["zz"], ["ab", "cd"], ["a" * 130], ["0x00"], ["é1"]])
    def test_refuses(self, values):
        assert parse_nonce(values) is None

    @pytest.mark.parametrize("text", ["00", "ABcd", "ff" * 64])
    def test_accepts(self, text):
        assert parse_nonce([text]) == bytes.fromhex(text)


class TestAttestationRoute:
    @pytest.mark.parametrize("query", ["", "?nonce=", "?nonce=xyz", "?nonce=abc", f"?nonce={'00' * 65}", "?nonce=00&nonce=01"])
    async def test_bad_or_missing_nonce_is_400(self, runtime, query):
        async with client(runtime) as http:
            response = await http.get("/attestation" + query)
        assert response.status_code == 400
        assert "nonce" in response.json()["error"]

    async def test_cbor_by_default_with_nonce_keys_and_layout(self, runtime):
        async with client(runtime) as http:
            response = await http.get("/attestation?nonce=" + "ab" * 32)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/cbor"
        assert response.headers["cache-control"] == "no-store"
        document = AttestationDocument.from_cose(response.content)
        assert document.unverified_nonce == bytes.fromhex("ab" * 32)
        assert document.unverified_public_key == runtime.identity.signing_public_key
        binding = EnclaveUserData.decode(document.unverified_user_data)
        assert binding.tls_spki_sha256 == runtime.identity.tls_spki_sha256
        assert binding.configuration_sha384 == runtime.configuration_digest
        assert binding.provisioning_public_key == runtime.identity.provisioning_public_key
        assert "x-enclave-signature" not in response.headers  # the document authenticates itself

    async def test_json_when_asked(self, runtime):
        async with client(runtime) as http:
            response = await http.get("/attestation?nonce=01", headers={"accept": "application/json"})
        assert response.status_code == 200
        raw = base64.b64decode(response.json()["attestation"])
        assert AttestationDocument.from_cose(raw).unverified_nonce == b"\x01"

    async def test_attester_failure_is_a_generic_503(self, tee_pki, caplog):
        runtime = make_runtime(tee_pki)

        def broken(**fields):
            raise OSError("ioctl exploded: secret detail")

        runtime.attester.attestation = broken
        async with client(runtime) as http:
            response = await http.get("/attestation?nonce=01")
        assert response.status_code == 503
        assert response.json() == {"error": "attestation unavailable"}
        assert "secret detail" in caplog.text  # logged, not returned

    async def test_rate_limited(self, tee_pki):
        ticks = iter(float(n) * 0.01 for n in range(1000))
        runtime = make_runtime(tee_pki, attestation_limiter=TokenBucket(rate=1.0, burst=2, clock=lambda: next(ticks)))
        async with client(runtime) as http:
            statuses = [(await http.get("/attestation?nonce=01")).status_code for _ in range(3)]
            limited = await http.get("/attestation?nonce=01")
        assert statuses == [200, 200, 429]
        assert limited.headers["retry-after"] == "1"


class TestTokenBucket:
    def test_refills_over_time(self):
        now = [0.0]
        bucket = TokenBucket(rate=2.0, burst=1, clock=lambda: now[0])
        assert bucket.take() == 0
        assert bucket.take() == pytest.approx(0.5)
        now[0] = 0.5
        assert bucket.take() == 0
