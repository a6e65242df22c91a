"""A restarted enclave provisions itself: the boot code (enclave.boot.run) twice on one parent, as after a crash.

The parent is the real host proxy started from the manifest (Unix sockets stand in for vsock): it serves the
configuration, the instance role's credentials (a file here; IMDS on EC2), receives the enclave's logs and
answers its time requests, and relays the egress route to the localnet KMS stand-in. The manifest says
``[provisioning] sources = ["kms"]``: no person is involved in either boot.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import logging
import ssl
import sys

import httpx
import pytest

from enclave.boot import run
from enclave.platform import Platform
from host_proxy.channels import EnclaveChannels, ParentChannels
from host_proxy.manifest_settings import settings_from_manifest
from host_proxy.proxy import Proxy
from localnet.kms import IMAGE_SHA384, KeyPolicy, KmsStandIn
from localnet.runner import serving
from manifest import EgressRoute, HostSection, Manifest
from memwal_common.sigv4 import AwsCredentials

from .conftest import IMAGE_PCRS, document_for, document_with, real_now
from .test_boot import FAST, Opened

CREDENTIALS = AwsCredentials("AKIDRESTARTTEST", "restart-secret-access-key", "restart-session-token")
SECRETS = {"OPENAI_API_KEY": "sk-restart-" + "5" * 20}


async def health(url: str) -> dict:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    async with httpx.AsyncClient(verify=context, transport=httpx.AsyncHTTPTransport(uds=url, verify=context)) as http:
        return (await http.get("https://enclave/health")).json()["enclave"]


async def boot_until_provisioned(platform: Platform, ingress: str) -> dict:
    shutdown = asyncio.Event()
    task = asyncio.create_task(run(platform, shutdown))
    try:
        for _ in range(600):
            await asyncio.sleep(0.05)
            with contextlib.suppress(httpx.HTTPError, OSError, KeyError, ValueError):
                state = await health(ingress)
                if state["provisionedThrough"] is not None:
                    return state
        raise AssertionError("the enclave did not provision itself")
    finally:
        shutdown.set()
        assert await asyncio.wait_for(task, 30) == 0


@pytest.mark.slow
async def test_each_boot_gets_its_secrets_from_kms_without_a_person(tee_pki, tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="memwal")
    standin = KmsStandIn(region="us-east-1", credentials={CREDENTIALS.access_key_id: CREDENTIALS.secret_access_key},
                         trust_root=tee_pki.trust_root(), clock=real_now)  # fmt: skip
    key_id = standin.create_key(KeyPolicy(frozenset({CREDENTIALS.access_key_id}), {IMAGE_SHA384: (IMAGE_PCRS[0].hex(),)}))
    blob = standin.encrypt(CREDENTIALS.access_key_id, {"KeyId": key_id, "Plaintext": base64.b64encode(json.dumps(SECRETS).encode()).decode()})
    credentials_file = tmp_path / "aws-credentials.json"
    credentials_file.write_text(json.dumps({"AccessKeyId": CREDENTIALS.access_key_id, "SecretAccessKey": CREDENTIALS.secret_access_key,
                                            "Token": CREDENTIALS.session_token, "Expiration": ""}))  # fmt: skip
    output = io.StringIO()
    monkeypatch.setattr(sys, "stdout", output)  # the host proxy writes the enclave's log lines here
    async with serving(standin.app(), name="kms") as kms_url:
        port = int(kms_url.rsplit(":", 1)[1])
        document = document_with(
            document_for(), egress=[EgressRoute("kms", "127.0.0.1", port, 8190)],
            provisioning={"sources": ["kms"], "retry_seconds": 1,
                          "kms": {"endpoint": kms_url, "region": "us-east-1", "ciphertext": blob["CiphertextBlob"]}},
        )  # fmt: skip
        manifest = Manifest(document, HostSection(public_ingress=f"unix:{tmp_path}/public.sock", aws_credentials=f"file:{credentials_file}"))
        sockets = tmp_path / "channels"
        sockets.mkdir()
        proxy = Proxy(settings_from_manifest(manifest, ParentChannels.parse(f"unix:{sockets}", enclave_cid=16)))
        await proxy.start()
        try:
            boots = []
            for _ in range(2):  # the second boot is the restart: new keys, same manifest
                platform = Platform(attester=Opened(tee_pki), channels=EnclaveChannels.parse(f"unix:{sockets}"),
                                    environment={"PATH": "/usr/bin"}, clock=real_now, data_directory=tmp_path / "data",
                                    backoff=FAST, forwarders=False, trust_root=tee_pki.trust_root())  # fmt: skip
                boots.append(await boot_until_provisioned(platform, str(sockets / "port-8443.sock")))
        finally:
            await proxy.shutdown()
    assert [state["provisionedThrough"] for state in boots] == ["aws-kms-recipient"] * 2
    assert boots[0]["identityPublicKey"] != boots[1]["identityPublicKey"]
    assert standin.decrypts_for_recipient == 2
    logs = [json.loads(line) for line in output.getvalue().splitlines() if line.startswith("{")]
    enclave_lines = [line for line in logs if line.get("source") == "enclave"]
    assert any("provisioned through aws-kms-recipient" in line["message"] for line in enclave_lines)
    assert SECRETS["OPENAI_API_KEY"] not in output.getvalue()
