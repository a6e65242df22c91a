"""``python -m devtools.simulated_enclave``: the production boot code with the NSM simulator injected."""

import asyncio
import json
import os
import signal
import ssl
import sys
from pathlib import Path

import httpx
import pytest

from attestation.document import AttestationDocument
from attestation.simulator import SimulatedNsm
from attestation.user_data import EnclaveUserData
from devtools.simulated_enclave import ROOT_PEM_BEGIN, ROOT_PEM_END, build_parser, simulated_platform
from host_proxy.channels import ParentChannels
from host_proxy.configuration_server import ConfigurationServer
from manifest import CONFIGURATION_PORT, parse_manifest

REPOSITORY = Path(__file__).resolve().parents[2]
PCRS = {"PCR0": "0a" * 48, "PCR1": "0b" * 48, "PCR2": "0c" * 48}
MANIFEST = b"""format = 1
[relayer]
MEMWAL_PACKAGE_ID = "0x01"
MEMWAL_REGISTRY_ID = "0x02"
SUI_RPC_URL = "http://127.0.0.1:1"
WALRUS_PUBLISHER_URL = "http://127.0.0.1:1"
WALRUS_AGGREGATOR_URLS = ["http://127.0.0.1:1"]
SEAL_SERVER_CONFIGS = [{ objectId = "0x03", weight = 1 }]
[[egress]]
name = "local"
destination = "127.0.0.1:1"
vsock_port = 8101
"""


class TestPlatform:
    def test_the_simulator_reports_the_given_pcrs_and_publishes_its_root(self, tmp_path, capsys):
        (tmp_path / "pcrs.json").write_text(json.dumps(PCRS))
        arguments = build_parser().parse_args(
            ["--transport", f"unix:{tmp_path}", "--pcrs", str(tmp_path / "pcrs.json"), "--test-root-out", "-",
             "--data-dir", str(tmp_path / "data")]
        )  # fmt: skip
        platform = simulated_platform(arguments)
        attester = platform.attester()
        assert isinstance(attester, SimulatedNsm)
        assert attester.describe_pcr(0) == (True, bytes.fromhex(PCRS["PCR0"]))
        out = capsys.readouterr().out
        assert out.startswith(ROOT_PEM_BEGIN + "\n-----BEGIN CERTIFICATE-----") and ROOT_PEM_END in out
        assert platform.hosts_file is None and platform.forwarders

    def test_a_bad_transport_is_a_usage_error(self, tmp_path):
        with pytest.raises(SystemExit) as exited:
            from devtools.simulated_enclave import main

            main(["--transport", "vsock:16", "--data-dir", str(tmp_path)])
        assert exited.value.code == 2


async def test_boots_as_a_process_from_the_parent_s_configuration(tmp_path):
    document = parse_manifest(MANIFEST).enclave
    server = ConfigurationServer(ParentChannels.parse(f"unix:{tmp_path}", enclave_cid=16).listen(CONFIGURATION_PORT),
                                 document.canonical_json())  # fmt: skip
    await server.start()
    environment = {"PATH": os.environ["PATH"], "PYTHONPATH": str(REPOSITORY)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "devtools.simulated_enclave", "--transport", f"unix:{tmp_path}", "--data-dir",
        str(tmp_path / "data"), "--test-root-out", str(tmp_path / "root.pem"), "--no-forwarders",
        cwd=REPOSITORY, env=environment, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        ingress = tmp_path / "port-8443.sock"
        for _ in range(600):
            if ingress.exists() or process.returncode is not None:
                break
            await asyncio.sleep(0.05)
        assert ingress.exists(), (await process.stderr.read()).decode()[-3000:]
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        # Generous: the socket is open before hypercorn serves it (the runtime imports it and the relayer's
        # settings first), so on a loaded machine the first handshake can take longer than httpx's 5 s.
        transport = httpx.AsyncHTTPTransport(uds=str(ingress), verify=context)
        async with httpx.AsyncClient(transport=transport, timeout=30.0) as http:
            response = await http.get("https://localhost/attestation?nonce=01")
        attested = AttestationDocument.from_cose(response.content)
        assert EnclaveUserData.decode(attested.unverified_user_data).configuration_sha384 == document.digest()
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
        await server.close()
    log = (await process.stderr.read()).decode()
    assert "SIMULATED attester" in log and "waiting for configuration from the parent over unix:" in log
