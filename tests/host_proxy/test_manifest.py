"""The host proxy driven by one appliance manifest: channels, derived routes, the configuration channel, nitro-cli."""

import asyncio
import hashlib
from pathlib import Path

import pytest

from host_proxy.addresses import TcpEndpoint, UnixEndpoint, VsockEndpoint, connect_stream
from host_proxy.channels import EnclaveChannels, ParentChannels
from host_proxy.cli import main
from host_proxy.errors import AddressError, ConfigurationError
from host_proxy.manifest_settings import settings_from_manifest
from host_proxy.nitro_cli import EXIT_NO_NITRO_CLI, minimum_memory_mib, plan_launch, recommended_memory_mib
from host_proxy.nitro_cli import main as nitro_main
from host_proxy.proxy import Proxy
from manifest import CONFIGURATION_PORT, FrameReader, load_manifest, parse_manifest

REPOSITORY = Path(__file__).resolve().parents[2]
EXAMPLE = REPOSITORY / "docs" / "manifest.example.toml"
MIB = 1024 * 1024


class TestChannels:
    def test_vsock_on_both_sides(self):
        enclave, parent = EnclaveChannels.parse("vsock"), ParentChannels.parse("vsock", enclave_cid=16)
        assert enclave.to_parent(7000) == VsockEndpoint(3, 7000)
        assert str(enclave.listen(8443)) == "vsock:ANY:8443"
        assert str(parent.listen(8101)) == "vsock:ANY:8101"
        assert parent.to_enclave(8443) == VsockEndpoint(16, 8443)
        assert enclave.describe(7000) == "vsock (cid 3, port 7000)"

    def test_unix_sockets_named_by_port_on_both_sides(self):
        enclave, parent = EnclaveChannels.parse("unix:/run/e/"), ParentChannels.parse("unix:/run/e", enclave_cid=16)
        assert enclave.to_parent(7000) == parent.listen(7000) == UnixEndpoint("/run/e/port-7000.sock")
        assert enclave.listen(8443) == parent.to_enclave(8443) == UnixEndpoint("/run/e/port-8443.sock")

    def test_tcp_for_a_test_boot_with_an_offset(self):
        enclave, parent = EnclaveChannels.parse("tcp:10.0.2.2+1000"), ParentChannels.parse("tcp:127.0.0.1+1000", enclave_cid=16)
        assert enclave.to_parent(7000) == TcpEndpoint("10.0.2.2", 8000)
        assert enclave.listen(8443) == TcpEndpoint("0.0.0.0", 9443)
        assert parent.listen(8101) == TcpEndpoint("127.0.0.1", 9101)
        assert parent.to_enclave(8443) == TcpEndpoint("127.0.0.1", 9443)
        assert enclave.describe(7000) == "tcp:10.0.2.2:8000"

    @pytest.mark.parametrize("text", ["VSOCK", "unix:relative", "tcp:", "tcp:h+x", "udp:1.2.3.4", "vsock:16"])
    def test_refuses(self, text):
        with pytest.raises(AddressError):
            EnclaveChannels.parse(text)

    def test_an_offset_past_the_last_tcp_port_is_refused(self):
        with pytest.raises(AddressError, match="is not a TCP port"):
            EnclaveChannels.parse("tcp:10.0.2.2+60000").listen(8443)


class TestSettingsFromManifest:
    def test_every_route_of_the_example(self):
        deployment = load_manifest(EXAMPLE)
        settings = settings_from_manifest(deployment, ParentChannels.parse("vsock", enclave_cid=16))
        routes = {route.label: (route.kind, str(route.listen), str(route.target)) for route in settings.routes}
        assert routes["ingress"] == ("ingress", "tcp:0.0.0.0:443", "vsock:16:8443")
        assert routes["openai"] == ("egress", "vsock:ANY:8104", "tcp:api.openai.com:443")
        assert routes["relayer-metrics"] == ("ingress", "tcp:127.0.0.1:9465", "vsock:16:9464")
        assert len(routes) == 2 + len(deployment.enclave.egress)
        assert settings.configuration is not None
        assert str(settings.configuration.listen) == "vsock:ANY:7000"
        assert settings.configuration.document == deployment.enclave.canonical_json()
        assert str(settings.metrics) == "tcp:127.0.0.1:9100"
        assert settings.limits.idle_timeout_seconds == 0 and settings.limits.connect_timeout_seconds == 5

    def test_tcp_transport_for_a_qemu_test_boot(self):
        # The ingress target is QEMU's host forward on loopback; every parent listener stays on loopback.
        deployment = load_manifest(EXAMPLE)
        settings = settings_from_manifest(deployment, ParentChannels.parse("tcp:127.0.0.1+20000", enclave_cid=16))
        routes = {route.label: (str(route.listen), str(route.target)) for route in settings.routes}
        assert routes["ingress"] == ("tcp:0.0.0.0:443", "tcp:127.0.0.1:28443")
        assert routes["openai"] == ("tcp:127.0.0.1:28104", "tcp:api.openai.com:443")
        assert settings.configuration is not None and str(settings.configuration.listen) == "tcp:127.0.0.1:27000"

    def test_limits_default_to_no_idle_cut_and_unknown_limits_are_refused(self):
        minimal = b'format = 1\n[host]\npublic_ingress = "tcp:127.0.0.1:8443"\n'
        settings = settings_from_manifest(parse_manifest(minimal), ParentChannels.parse("vsock", enclave_cid=16))
        assert settings.limits.idle_timeout_seconds == 0
        with pytest.raises(ConfigurationError, match="host.limits: unknown key"):
            settings_from_manifest(parse_manifest(minimal + b"[host.limits]\nidle = 5\n"), ParentChannels.parse("vsock", enclave_cid=16))

    def test_idle_cuts_are_short_on_ingress_and_long_on_the_database_tunnels(self):
        from host_proxy.manifest_settings import EGRESS_IDLE_TIMEOUT_SECONDS, INGRESS_IDLE_TIMEOUT_SECONDS
        minimal = (b'format = 1\n[[egress]]\nname = "db"\ndestination = "db.example.com:5432"\nvsock_port = 8101\n'
                   b'[host]\npublic_ingress = "tcp:127.0.0.1:8443"\n')
        channels = ParentChannels.parse("vsock", enclave_cid=16)
        settings = settings_from_manifest(parse_manifest(minimal), channels)
        idle = {route.label: route.idle_timeout(settings.limits) for route in settings.routes}
        assert idle == {"ingress": INGRESS_IDLE_TIMEOUT_SECONDS, "db": EGRESS_IDLE_TIMEOUT_SECONDS}
        assert 0 < INGRESS_IDLE_TIMEOUT_SECONDS < EGRESS_IDLE_TIMEOUT_SECONDS
        tuned = minimal + b"[host.limits]\ningress_idle_timeout_seconds = 15\negress_idle_timeout_seconds = 0\n"
        settings = settings_from_manifest(parse_manifest(tuned), channels)
        assert {route.label: route.idle_timeout(settings.limits) for route in settings.routes} == {"ingress": 15, "db": 0}
        with pytest.raises(ConfigurationError, match="ingress_idle_timeout_seconds"):
            settings_from_manifest(parse_manifest(minimal + b"[host.limits]\ningress_idle_timeout_seconds = -1\n"), channels)

    def test_relayer_metrics_reach_the_enclave_only_from_an_operator_listener(self):
        from host_proxy.manifest_settings import RELAYER_METRICS_ROUTE
        from manifest import METRICS_PORT
        channels = ParentChannels.parse("vsock", enclave_cid=16)
        minimal = b'format = 1\n[host]\npublic_ingress = "tcp:0.0.0.0:443"\n'
        assert RELAYER_METRICS_ROUTE not in {r.label for r in settings_from_manifest(parse_manifest(minimal), channels).routes}
        settings = settings_from_manifest(parse_manifest(minimal + b'relayer_metrics = "tcp:127.0.0.1:9465"\n'), channels)
        [route] = [r for r in settings.routes if r.label == RELAYER_METRICS_ROUTE]
        assert (str(route.listen), str(route.target)) == ("tcp:127.0.0.1:9465", f"vsock:16:{METRICS_PORT}")
        with pytest.raises(ConfigurationError, match="operator-only"):
            settings_from_manifest(parse_manifest(minimal + b'relayer_metrics = "tcp:0.0.0.0:9465"\n'), channels)

    def test_a_bad_public_ingress_names_the_manifest(self):
        deployment = parse_manifest(b'format = 1\n[host]\npublic_ingress = "0.0.0.0:443"\n')
        with pytest.raises(ConfigurationError, match="manifest: '0.0.0.0:443'"):
            settings_from_manifest(deployment, ParentChannels.parse("vsock", enclave_cid=16))


class TestConfigurationChannel:
    async def test_every_connection_gets_the_document_once(self, short_dir):
        deployment = load_manifest(EXAMPLE)
        settings = settings_from_manifest(deployment, ParentChannels.parse(f"unix:{short_dir}", enclave_cid=16))
        settings = type(settings)(settings.routes[:1], settings.limits, None, settings.configuration)  # no egress listeners
        proxy = Proxy(settings)
        await proxy.start()
        try:
            endpoint = EnclaveChannels.parse(f"unix:{short_dir}").to_parent(CONFIGURATION_PORT)
            assert proxy.addresses["configuration"] == endpoint
            for _ in range(2):
                reader, writer = await connect_stream(endpoint, timeout=5)
                frame = FrameReader()
                frame.feed(await asyncio.wait_for(reader.read(), 5))  # the parent closes after one frame
                writer.close()
                assert frame.document == deployment.enclave.canonical_json()
            assert "host_proxy_configuration_served_total 2.0" in proxy.metrics.render().decode()
        finally:
            await proxy.shutdown()
        assert not Path(str(endpoint).removeprefix("unix:")).exists()


class TestCommandLine:
    def test_check_prints_routes_and_the_document_hash(self, capsys):
        assert main(["--manifest", str(EXAMPLE), "--check"]) == 0
        out = capsys.readouterr().out
        digest = hashlib.sha384(load_manifest(EXAMPLE).enclave.canonical_json()).hexdigest()
        assert f"configuration channel: vsock:ANY:7000 (enclave document sha384 {digest})" in out
        assert "ingress tcp:0.0.0.0:443 → vsock:16:8443" in out

    @pytest.mark.parametrize(
        ("argv", "message"),
        [
            (["--manifest", "EXAMPLE", "--ingress", "tcp:0.0.0.0:1=vsock:16:1"], "do not combine it"),
            (["--manifest", "EXAMPLE", "--transport", "smoke"], "transport 'smoke'"),
            (["--ingress", "tcp:0.0.0.0:1=vsock:16:1", "--transport", "unix:/x"], "only applies to --manifest"),
            (["--manifest", "/nonexistent.toml"], "cannot read manifest"),
        ],
    )
    def test_errors_exit_2(self, argv, message, capsys):
        with pytest.raises(SystemExit) as exited:
            main([str(EXAMPLE) if item == "EXAMPLE" else item for item in argv])
        assert exited.value.code == 2
        assert message in capsys.readouterr().err


class TestNitroCli:
    def test_memory_follows_nitro_cli_s_rule(self):
        assert minimum_memory_mib(163 * MIB + 1) == 164 * 4
        assert minimum_memory_mib(100 * MIB) == 400
        assert recommended_memory_mib(100 * MIB) == 768  # 100 + 512 working set, in 256 MiB steps
        assert recommended_memory_mib(300 * MIB) == 1280  # 4 × 300 dominates

    def test_too_little_memory_is_refused_before_nitro_cli_would(self, tmp_path):
        eif = tmp_path / "enclave.eif"
        eif.write_bytes(b"\0" * (2 * MIB))
        deployment = parse_manifest(b"format = 1\n[host]\nmemory_mib = 7\n")
        with pytest.raises(ValueError, match="nitro-cli accepts for this 2.0 MiB EIF: 8 MiB"):
            plan_launch(deployment, eif, debug_mode=False)
        launch = plan_launch(parse_manifest(b"format = 1\n[host]\ncpu_count = 4\nenclave_cid = 21\n"), eif, debug_mode=True)
        assert launch.argv() == [
            "nitro-cli", "run-enclave", "--eif-path", str(eif), "--cpu-count", "4", "--memory", "768", "--enclave-cid", "21",
            "--debug-mode",
        ]  # fmt: skip

    def test_explains_itself_where_nitro_cli_is_missing(self, tmp_path, capsys, monkeypatch):
        monkeypatch.setenv("PATH", str(tmp_path))  # no nitro-cli on this PATH
        eif = tmp_path / "enclave.eif"
        eif.write_bytes(b"\0" * MIB)
        assert nitro_main(["--manifest", str(EXAMPLE), "--eif", str(eif)]) == EXIT_NO_NITRO_CLI
        captured = capsys.readouterr()
        assert "command: nitro-cli run-enclave --eif-path" in captured.out
        assert "allocator (/etc/nitro_enclaves/allocator.yaml) must reserve at least: cpu_count: 2, memory_mib: 768" in captured.out
        assert "nitro-cli is not installed here" in captured.err

    def test_runs_nitro_cli_where_it_exists(self, tmp_path, capsys, monkeypatch):
        fake = tmp_path / "nitro-cli"
        fake.write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/called\nexit 7\n')
        fake.chmod(0o755)
        monkeypatch.setenv("PATH", str(tmp_path))
        eif = tmp_path / "enclave.eif"
        eif.write_bytes(b"\0" * MIB)
        assert nitro_main(["--manifest", str(EXAMPLE), "--eif", str(eif), "--debug-mode"]) == 7
        assert (tmp_path / "called").read_text().split() == [
            "run-enclave", "--eif-path", str(eif), "--cpu-count", "2", "--memory", "768", "--enclave-cid", "16", "--debug-mode",
        ]  # fmt: skip
        assert "DEBUG MODE: the attestation documents carry all-zero PCRs" in capsys.readouterr().out

    def test_a_missing_eif_says_how_to_build_it(self, tmp_path, capsys):
        assert nitro_main(["--manifest", str(EXAMPLE), "--eif", str(tmp_path / "none.eif")]) == 2
        assert "make image" in capsys.readouterr().err


class TestNitroRecipeAgreesWithTheCode:
    """docs/nitro.md states ports, timeouts and memory rules; these are the values the code uses."""

    @pytest.fixture
    def recipe(self):
        return (REPOSITORY / "docs" / "nitro.md").read_text()

    def test_ports(self, recipe):
        from manifest import HEARTBEAT_PORT
        from manifest.model import DEFAULT_ENCLAVE_CID, DEFAULT_INGRESS_PORT, DEFAULT_PUBLIC_INGRESS

        assert f"| configuration channel | parent, vsock port | **{CONFIGURATION_PORT}** |" in recipe
        assert f"| boot heartbeat | parent, vsock port | {HEARTBEAT_PORT} " in recipe
        assert f"`[enclave].ingress_port`, default {DEFAULT_INGRESS_PORT}" in recipe
        assert f"`[host].public_ingress`, default `{DEFAULT_PUBLIC_INGRESS}`" in recipe
        assert f"`[host].enclave_cid`, default {DEFAULT_ENCLAVE_CID}" in recipe

    def test_timeouts(self, recipe):
        from enclave.configuration import WAIT_MESSAGE, Backoff
        from host_proxy.configuration_server import SEND_TIMEOUT_SECONDS
        from host_proxy.manifest_settings import MANIFEST_DEFAULT_LIMITS

        backoff = Backoff()
        assert (
            f"forever; retries after {backoff.initial_seconds:g} s doubling to {backoff.maximum_seconds:g} s; "
            f"connect {backoff.connect_timeout_seconds:g} s, read {backoff.read_timeout_seconds:g} s; "
            f"a reminder line every {backoff.remind_seconds:g} s"
        ) in recipe
        assert f"| host proxy serves one configuration frame | {SEND_TIMEOUT_SECONDS:g} s per connection |" in recipe
        limits = MANIFEST_DEFAULT_LIMITS
        assert f"| host proxy connect to a target | {limits.connect_timeout_seconds:g} s" in recipe
        from host_proxy.manifest_settings import EGRESS_IDLE_TIMEOUT_SECONDS, INGRESS_IDLE_TIMEOUT_SECONDS
        assert (f"| host proxy idle cut | per route: ingress {INGRESS_IDLE_TIMEOUT_SECONDS:g} s, "
                f"egress {EGRESS_IDLE_TIMEOUT_SECONDS:g} s") in recipe
        assert f"other routes `idle_timeout_seconds` {limits.idle_timeout_seconds:g} = none" in recipe
        assert f"| host proxy graceful shutdown | {limits.graceful_timeout_seconds:g} s" in recipe
        assert WAIT_MESSAGE.format(channel=EnclaveChannels.vsock().describe(CONFIGURATION_PORT)) in recipe

    def test_memory_rule(self, recipe):
        from host_proxy.nitro_cli import NITRO_CLI_EIF_RATIO, WORKING_SET_MIB

        assert f"**{NITRO_CLI_EIF_RATIO} × the EIF file size**" in recipe
        assert f"`max({NITRO_CLI_EIF_RATIO} × EIF, EIF + {WORKING_SET_MIB} MiB)`" in recipe

    def test_the_example_manifest_is_the_one_the_recipe_copies(self, recipe):
        assert "docs/manifest.example.toml" in recipe
        load_manifest(EXAMPLE)  # and it is valid
