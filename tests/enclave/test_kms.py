"""The KMS recipient path against the localnet KMS stand-in (real SigV4, real attestation check, real CMS)."""

from __future__ import annotations

import asyncio
import base64
import json
from contextlib import AsyncExitStack

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from enclave.errors import RecipientEnvelopeError
from enclave.kms import KmsClient, KmsError, KmsRecipientSource, open_recipient_envelope
from localnet.kms import IMAGE_SHA384, KeyPolicy, KmsStandIn, envelope_for_recipient
from localnet.runner import serving
from manifest import EgressRoute, KmsProvisioning
from memwal_common.sigv4 import AwsCredentials

from .conftest import IMAGE_PCRS, RelayerStarter, document_for, document_with, make_runtime, real_now

CREDENTIALS = AwsCredentials("AKIDLOCALNETTEST", "localnet-secret-access-key", "localnet-session-token")
SECRETS = {"OPENAI_API_KEY": "sk-from-kms", "DATABASE_URL": "postgres://relayer:kms-pa55@db/memwal"}
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
SPKI = KEY.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


async def credentials() -> AwsCredentials:
    return CREDENTIALS


class TestRecipientEnvelope:
    def test_opens_what_kms_sends(self):
        assert open_recipient_envelope(envelope_for_recipient(b"secret bytes", SPKI), KEY) == b"secret bytes"

    def test_opens_indefinite_length_ber(self):
        """KMS answers BER; the outer ContentInfo re-encoded with indefinite lengths must still open."""
        der = envelope_for_recipient(b"ber", SPKI)
        oid = bytes.fromhex("06092a864886f70d010703")  # id-envelopedData
        assert der[:2] == b"\x30\x82" and oid in der[:20]
        enveloped = der[4 + len(oid) :]  # [0] EXPLICIT { EnvelopedData }
        assert enveloped[:2] == b"\xa0\x82"
        ber = b"\x30\x80" + oid + b"\xa0\x80" + enveloped[4:] + b"\x00\x00\x00\x00"
        assert open_recipient_envelope(ber, KEY) == b"ber"

    def test_another_key_cannot_open_it(self):
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        with pytest.raises(RecipientEnvelopeError, match="does not open"):
            open_recipient_envelope(envelope_for_recipient(b"x", SPKI), other)

    def test_pkcs1_v15_key_transport_is_refused(self):
        """cryptography's own EnvelopedData (RSA PKCS#1 v1.5, AES-128) is a different profile: refused."""
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "recipient")])
        certificate = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(KEY.public_key())
            .serial_number(1).not_valid_before(real_now()).not_valid_after(real_now().replace(year=2100))
            .sign(KEY, hashes.SHA256())
        )  # fmt: skip
        other = pkcs7.PKCS7EnvelopeBuilder().set_data(b"x").add_recipient(certificate).encrypt(serialization.Encoding.DER, [])
        with pytest.raises(RecipientEnvelopeError, match="RSAES-OAEP"):
            open_recipient_envelope(other, KEY)

    @pytest.mark.parametrize("data", [b"", b"\x30\x03\x02\x01\x00", bytes(40_000), b"not asn1 at all"])
    def test_malformed_is_refused(self, data):
        with pytest.raises(RecipientEnvelopeError):
            open_recipient_envelope(data, KEY)


@pytest.fixture
async def kms(tee_pki):
    standin = KmsStandIn(region="us-east-1", credentials={CREDENTIALS.access_key_id: CREDENTIALS.secret_access_key},
                         trust_root=tee_pki.trust_root(), clock=real_now)  # fmt: skip
    async with serving(standin.app(), name="kms") as url:
        yield standin, url, KmsClient(endpoint=url, region="us-east-1", credentials=credentials, clock=real_now)


async def encrypted_secrets(client: KmsClient, key_id: str) -> bytes:
    answer = await client.call("Encrypt", {"KeyId": key_id, "Plaintext": base64.b64encode(json.dumps(SECRETS).encode()).decode()})
    return base64.b64decode(answer["CiphertextBlob"])


def policy_for(pcr0: bytes) -> KeyPolicy:
    return KeyPolicy(frozenset({CREDENTIALS.access_key_id}), {IMAGE_SHA384: (pcr0.hex().upper(),),
                                                                "kms:RecipientAttestation:PCR1": (IMAGE_PCRS[1].hex(),)})  # fmt: skip


class TestKmsRecipientSource:
    async def test_secrets_reach_only_the_attested_enclave(self, tee_pki, kms):
        standin, url, client = kms
        key_id = standin.create_key(policy_for(IMAGE_PCRS[0]))
        settings = KmsProvisioning(url, "us-east-1", await encrypted_secrets(client, key_id), key_id)
        runtime = make_runtime(tee_pki)
        secrets = await KmsRecipientSource(settings, attester=runtime.attester, client=client).obtain()
        assert dict(secrets.values) == SECRETS and secrets.source == "aws-kms-recipient"
        assert standin.decrypts_for_recipient == 1

    async def test_another_image_is_refused_by_the_key_policy(self, tee_pki, kms):
        standin, url, client = kms
        key_id = standin.create_key(policy_for(bytes.fromhex("ee" * 48)))
        settings = KmsProvisioning(url, "us-east-1", await encrypted_secrets(client, key_id))
        runtime = make_runtime(tee_pki)
        with pytest.raises(KmsError, match="ImageSha384 is not met") as refused:
            await KmsRecipientSource(settings, attester=runtime.attester, client=client).obtain()
        assert refused.value.kind == "AccessDeniedException"

    async def test_no_plaintext_without_a_recipient_and_no_call_without_credentials(self, tee_pki, kms):
        standin, url, client = kms
        key_id = standin.create_key(policy_for(IMAGE_PCRS[0]))
        blob = await encrypted_secrets(client, key_id)
        with pytest.raises(KmsError, match="ImageSha384 is not met"):
            await client.call("Decrypt", {"CiphertextBlob": base64.b64encode(blob).decode()})

        async def wrong() -> AwsCredentials:
            return AwsCredentials(CREDENTIALS.access_key_id, "not the secret")

        impostor = KmsClient(endpoint=url, region="us-east-1", credentials=wrong, clock=real_now)
        with pytest.raises(KmsError, match="does not verify") as refused:
            await impostor.call("Decrypt", {"CiphertextBlob": base64.b64encode(blob).decode()})
        assert refused.value.kind == "InvalidSignatureException"

    async def test_the_runtime_provisions_itself_from_kms(self, tee_pki, kms):
        """[provisioning] sources = ["kms"]: no person; /provision is not offered."""
        standin, url, client = kms
        key_id = standin.create_key(policy_for(IMAGE_PCRS[0]))
        blob = await encrypted_secrets(client, key_id)
        port = int(url.rsplit(":", 1)[1])
        document = document_with(
            document_for(), egress=[EgressRoute("kms", "127.0.0.1", port, 8190)],
            provisioning={"sources": ["kms"], "kms": {"endpoint": url, "region": "us-east-1",
                                                      "ciphertext": base64.b64encode(blob).decode()}},
        )  # fmt: skip
        starter = RelayerStarter()
        runtime = make_runtime(tee_pki, document=document, starter=starter, credentials=credentials,
                               egress_transport=lambda context: httpx.AsyncHTTPTransport())  # fmt: skip
        async with AsyncExitStack() as stack:
            await asyncio.wait_for(runtime.run_relayer(stack, asyncio.Event()), 30)
        assert runtime.secrets.source == "aws-kms-recipient"
        assert starter.calls[0][1]["OPENAI_API_KEY"] == "sk-from-kms"
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=runtime.app), base_url="https://enclave.test") as http:
            assert (await http.post("/provision", content=b"x")).status_code == 404
            health = (await http.get("/health")).json()["enclave"]
        assert health["provisionedThrough"] == "aws-kms-recipient" and health["provisioningSources"] == ["kms"]
