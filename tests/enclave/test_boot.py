"""The boot sequence from a platform: configuration channel → settings → attester → hosts → identity → PCR16 → serve.

Boots run over the Unix-socket and TCP transports (this machine has no vsock loopback); AF_VSOCK is
exercised up to bind/listen and a refused connect.
"""

import asyncio
import logging
import random
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from attestation.document import AttestationDocument
from attestation.nsm import NsmAttester
from attestation.simulator import SimulatedNsm
from attestation.user_data import EnclaveUserData
from enclave.boot import PASSED_VARIABLES, build_runtime, open_ingress, relayer_environment, run
from enclave.config_commitment import CONFIGURATION_PCR, expected_configuration_pcr
from enclave.configuration import WAIT_MESSAGE, Backoff
from enclave.errors import RuntimeConfigurationError
from enclave.platform import IMAGE_HOSTS_FILE, Platform, nitro_platform
from host_proxy.addresses import VsockEndpoint
from host_proxy.channels import EnclaveChannels, ParentChannels
from host_proxy.configuration_server import ConfigurationServer
from manifest import CONFIGURATION_PORT, EnclaveDocument, ManifestError
from memwal_common.environment import SettingsError

from .conftest import BASE_ENVIRONMENT, IMAGE_PCRS, document_for, real_now

REPOSITORY = Path(__file__).resolve().parents[2]
FAST = Backoff(initial_seconds=0.02, maximum_seconds=0.05, connect_timeout_seconds=1, read_timeout_seconds=1)


class Opened:
    """An attester factory that records whether (and when) the boot opened the attester."""

    def __init__(self, pki) -> None:
        self.pki = pki
        self.count = 0

    def __call__(self) -> SimulatedNsm:
        self.count += 1
        return SimulatedNsm(pki=self.pki, clock=real_now, boot_pcrs=IMAGE_PCRS)


def platform_for(pki, tmp_path, *, transport=None, environment=None, **options) -> Platform:
    return Platform(
        attester=options.pop("attester", Opened(pki)),
        channels=EnclaveChannels.parse(transport or f"unix:{tmp_path}"),
        environment={"PATH": "/usr/bin", "HOME": "/root"} if environment is None else environment,
        clock=real_now,
        data_directory=tmp_path / "data",
        backoff=FAST,
        **options,
    )


class TestRelayerEnvironment:
    @pytest.mark.parametrize("name", ["OPENAI_API_KEY", "DATABASE_URL", "MEMWAL_PACKAGE_ID", "RATE_LIMIT_DISABLED", "BIND"])
    def test_refuses_configuration_or_secrets_in_the_process_environment(self, tee_pki, tmp_path, name):
        platform = platform_for(tee_pki, tmp_path, environment={"PATH": "/usr/bin", name: "x"})
        with pytest.raises(RuntimeConfigurationError, match=name):
            relayer_environment(document_for(), platform)

    def test_only_the_document_and_python_s_own_variables_reach_the_relayer(self, tee_pki, tmp_path):
        process = {"PATH": "/usr/bin", "PYTHONPATH": "/opt/app", "HTTPS_PROXY": "http://evil:3128", "SSL_CERT_FILE": "/x"}
        environment = relayer_environment(document_for(), platform_for(tee_pki, tmp_path, environment=process))
        document = document_for().relayer_environment
        assert {name: environment[name] for name in document} == document
        assert "HTTPS_PROXY" not in environment and "SSL_CERT_FILE" not in environment
        assert environment["PYTHONPATH"] == "/opt/app"
        assert environment["MEMWAL_DATA_DIR"] == str(tmp_path / "data")
        assert set(environment) - set(document) <= {*PASSED_VARIABLES, "MEMWAL_DATA_DIR", "LOG_FORMAT"}
        assert "EGRESS_PLAINTEXT_DESTINATIONS" not in environment

    def test_the_routes_allowed_plaintext_reach_the_relayer_from_the_document(self, tee_pki, tmp_path):
        variables = {**BASE_ENVIRONMENT, "EGRESS_POLICY": "private", "EMBEDDING_PROVIDER": "local",
                     "OPENAI_API_BASE": "https://llm.internal:8443/v1"}  # fmt: skip
        plain = document_for(variables).as_json()
        for route in plain["egress"]:
            route["allow_plaintext"] = route["destination"] == "llm.internal:8443"
        document = EnclaveDocument.from_mapping(plain)
        environment = relayer_environment(document, platform_for(tee_pki, tmp_path))
        assert environment["EGRESS_PLAINTEXT_DESTINATIONS"] == "llm.internal:8443"


class TestBuildRuntime:
    def test_commits_the_document_digest_to_pcr16_and_user_data(self, tee_pki, tmp_path):
        document = document_for()
        runtime = build_runtime(document, platform_for(tee_pki, tmp_path))
        assert runtime.attester.describe_pcr(CONFIGURATION_PCR) == (True, expected_configuration_pcr(document.digest()))
        assert EnclaveUserData.decode(runtime.user_data).configuration_sha384 == document.digest()
        assert runtime.identity.hostname == document.tls_hostname

    def test_bad_settings_fail_before_the_attester_is_opened(self, tee_pki, tmp_path):
        document = document_for(dict(BASE_ENVIRONMENT, WALRUS_STORAGE_EPOCHS="9"))
        attester = Opened(tee_pki)
        with pytest.raises(SettingsError, match="WALRUS_STORAGE_EPOCHS"):
            build_runtime(document, platform_for(tee_pki, tmp_path, attester=attester))
        assert attester.count == 0

    def test_writes_the_hosts_table_where_the_platform_says(self, tee_pki, tmp_path):
        hosts = tmp_path / "etc-hosts"
        hosts.write_text("10.0.0.1 stale.example\n")
        document = document_for()
        build_runtime(document, platform_for(tee_pki, tmp_path, hosts_file=hosts))
        assert hosts.read_text() == document.hosts_file()
        assert "stale.example" not in hosts.read_text()
        assert "127.0.0.2\taggregator.walrus.test" in hosts.read_text()

    def test_the_production_platform_is_the_real_nsm_over_vsock(self):
        platform = nitro_platform({})
        assert platform.attester is NsmAttester
        assert platform.channels == EnclaveChannels.vsock()
        assert platform.hosts_file == IMAGE_HOSTS_FILE


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def loopback_document(ingress_port: int = 8443) -> EnclaveDocument:
    """Upstreams on loopback literals, so the forwarders can listen on this machine."""
    upstream = f"http://127.0.0.1:{free_port()}"
    environment = dict(BASE_ENVIRONMENT, SUI_RPC_URL=upstream, WALRUS_PUBLISHER_URL=upstream, WALRUS_AGGREGATOR_URLS=upstream)
    document = document_for(environment, tls_hostname="localhost")
    return EnclaveDocument(document.tls_hostname, ingress_port, document.relayer, document.egress)


async def serve_document(directory: Path, document: bytes) -> ConfigurationServer:
    channels = ParentChannels.parse(f"unix:{directory}", enclave_cid=16)
    server = ConfigurationServer(channels.listen(CONFIGURATION_PORT), document)
    await server.start()
    return server


async def wait_for_unix(path: Path, task: asyncio.Task) -> None:
    for _ in range(500):
        if task.done():
            task.result()
        if path.exists():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"nothing listened on {path}")


class TestRun:
    async def test_waits_for_the_parent_then_boots_and_serves_attested_tls(self, tee_pki, tmp_path, caplog):
        caplog.set_level(logging.INFO, logger="memwal.enclave")
        document = loopback_document()
        shutdown = asyncio.Event()
        boot = asyncio.create_task(run(platform_for(tee_pki, tmp_path), shutdown))
        await asyncio.sleep(0.3)  # the parent is not serving yet: the runtime keeps waiting
        assert not boot.done()
        assert WAIT_MESSAGE.format(channel=f"unix:{tmp_path}/port-{CONFIGURATION_PORT}.sock") in caplog.messages
        server = await serve_document(tmp_path, document.canonical_json())
        try:
            ingress = tmp_path / "port-8443.sock"
            await wait_for_unix(ingress, boot)
            context = ssl.create_default_context()
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
            transport = httpx.AsyncHTTPTransport(uds=str(ingress), verify=context)
            async with httpx.AsyncClient(transport=transport, base_url="https://localhost") as http:
                response = await http.get("/attestation?nonce=00ff")
            attested = AttestationDocument.from_cose(response.content)
            assert EnclaveUserData.decode(attested.unverified_user_data).configuration_sha384 == document.digest()
            assert attested.unverified_pcrs[CONFIGURATION_PCR] == expected_configuration_pcr(document.digest())
            forwarder = document.egress[0]
            with socket.create_connection((forwarder.host, forwarder.port), timeout=2):
                pass  # the loopback forwarder of the allowlisted upstream is listening
        finally:
            shutdown.set()
            assert await asyncio.wait_for(boot, 30) == 0
            await server.close()
        assert not (tmp_path / "port-8443.sock").exists()

    async def test_a_bad_document_refuses_to_boot(self, tee_pki, tmp_path):
        attester = Opened(tee_pki)
        server = await serve_document(tmp_path, b'{"format":1,"relayer":{"OPENAI_API_KEY":"sk-from-the-host"}}')
        try:
            with pytest.raises(ManifestError, match="secret"):
                await asyncio.wait_for(run(platform_for(tee_pki, tmp_path, attester=attester), asyncio.Event()), 10)
        finally:
            await server.close()
        assert attester.count == 0

    async def test_stops_cleanly_while_still_waiting(self, tee_pki, tmp_path):
        shutdown = asyncio.Event()
        boot = asyncio.create_task(run(platform_for(tee_pki, tmp_path), shutdown))
        await asyncio.sleep(0.1)
        shutdown.set()
        assert await asyncio.wait_for(boot, 5) == 0

    async def test_over_the_tcp_transport_of_a_test_boot(self, tee_pki, tmp_path):
        """What a QEMU test boot does: configuration from tcp:ADDRESS:7000+K, ingress on tcp:0.0.0.0:8443+K."""
        offset = free_port() - CONFIGURATION_PORT  # channel 7000 lands on a port that was just free
        document = loopback_document()
        parent = ParentChannels.parse(f"tcp:127.0.0.1+{offset}", enclave_cid=16)
        server = ConfigurationServer(parent.listen(CONFIGURATION_PORT), document.canonical_json())
        await server.start()
        shutdown = asyncio.Event()
        boot = asyncio.create_task(run(platform_for(tee_pki, tmp_path, transport=f"tcp:127.0.0.1+{offset}"), shutdown))
        ingress = parent.to_enclave(document.ingress_port)
        try:
            for _ in range(500):
                if boot.done():
                    boot.result()
                try:
                    with socket.create_connection((ingress.host, ingress.port), timeout=1):
                        break
                except OSError:
                    await asyncio.sleep(0.02)
            else:
                raise AssertionError(f"nothing listened on {ingress}")
        finally:
            shutdown.set()
            assert await asyncio.wait_for(boot, 30) == 0
            await server.close()


class TestVsock:
    """AF_VSOCK as far as this machine allows: no vsock loopback, so no end-to-end connection."""

    def test_the_ingress_listener_binds_and_listens_on_vsock(self):
        port = random.randint(50_000, 60_000)
        sock = open_ingress(VsockEndpoint(socket.VMADDR_CID_ANY, port))
        try:
            assert sock.family == socket.AF_VSOCK
            assert sock.getsockname() == (socket.VMADDR_CID_ANY, port)
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
        finally:
            sock.close()

    async def test_an_unreachable_parent_is_waited_for_with_the_documented_message(self, tee_pki, tmp_path, caplog):
        caplog.set_level(logging.INFO, logger="memwal.enclave")
        platform = platform_for(tee_pki, tmp_path, transport="vsock")
        boot = asyncio.create_task(run(platform, asyncio.Event()))
        await asyncio.sleep(0.3)
        assert not boot.done(), "connect to CID 3 fails here (ENODEV); the runtime must keep waiting, not exit"
        boot.cancel()
        await asyncio.gather(boot, return_exceptions=True)
        assert "waiting for configuration from the parent over vsock (cid 3, port 7000)" in caplog.messages


class TestProductionEntry:
    def test_imports_no_simulator_or_test_pki(self):
        probe = (
            "import sys; import enclave.command, enclave.boot, enclave.platform; "
            "print(sorted(m for m in sys.modules if m in ('attestation.simulator', 'attestation.testing') "
            "or m.split('.')[0] in ('devtools', 'localnet', 'tests', 'bench')))"
        )
        result = subprocess.run([sys.executable, "-c", probe], cwd=REPOSITORY, capture_output=True, text=True, check=True)
        assert result.stdout.strip() == "[]"

    def test_help_explains_the_wait(self):
        result = subprocess.run(
            [sys.executable, "-m", "enclave", "--help"], cwd=REPOSITORY, capture_output=True, text=True, check=True
        )
        assert "vsock CID 3, port 7000" in " ".join(result.stdout.split())
