from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from host_proxy.cli import build_parser, main, settings_from_arguments

from .conftest import close_client, open_client, target_server

REPO = Path(__file__).resolve().parents[2]


class TestArguments:
    def test_help_explains_tls_and_the_allowlist(self, capsys):
        with pytest.raises(SystemExit) as exited:
            main(["--help"])
        assert exited.value.code == 0
        text = capsys.readouterr().out
        assert "ciphertext" in text and "TLS terminates INSIDE the enclave" in text
        assert "egress rules are the allowlist" in text
        for flag in ("--ingress", "--egress", "--config", "--max-connections", "--idle-timeout", "--connect-timeout", "--metrics"):
            assert flag in text

    @pytest.mark.parametrize(
        ("argv", "message"),
        [
            ([], "no routes"),
            (["--ingress", "tcp:0.0.0.0:443"], "expected LISTEN=TARGET"),
            (["--ingress", "tcp:0.0.0.0:443=vsock:16"], "port must be a decimal number"),
            (["--egress", "vsock:ANY:8101=vsock:3:1"], "allowlisted tcp:HOST:PORT"),
            (["--ingress", "tcp:0.0.0.0:443=vsock:16:443", "--max-connections", "0"], "at least 1"),
            (["--ingress", "tcp:0.0.0.0:443=vsock:16:443", "--metrics", "9100"], "expected vsock:CID:PORT"),
        ],
    )
    def test_errors_exit_2_with_one_clear_line(self, argv, message, capsys):
        with pytest.raises(SystemExit) as exited:
            main(argv)
        assert exited.value.code == 2
        assert message in capsys.readouterr().err

    def test_check_prints_routes_and_allowlist(self, capsys):
        argv = ["--ingress", "tcp:0.0.0.0:443=vsock:16:443", "--egress", "vsock:ANY:8101=tcp:api.openai.com:443", "--check"]
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert "ingress tcp:0.0.0.0:443 → vsock:16:443" in out
        assert "egress allowlist: tcp:api.openai.com:443" in out

    def test_flags_add_routes_and_override_config_limits(self, tmp_path):
        config = tmp_path / "proxy.json"
        config.write_text(
            json.dumps(
                {
                    "ingress": [{"listen": "tcp:0.0.0.0:443", "target": "vsock:16:443"}],
                    "limits": {"idle_timeout_seconds": 60, "max_connections": 50},
                }
            )
        )
        arguments = build_parser().parse_args(
            ["--config", str(config), "--egress", "vsock:ANY:8101=tcp:api.openai.com:443", "--idle-timeout", "5"]
        )
        settings = settings_from_arguments(arguments)
        assert [route.kind for route in settings.routes] == ["ingress", "egress"]
        assert settings.limits.idle_timeout_seconds == 5.0
        assert settings.limits.max_connections == 50


class TestProcess:
    async def test_runs_proxies_and_stops_gracefully_on_sigterm(self, short_dir):
        async with target_server("echo", short_dir / "t.sock") as enclave:
            listen = short_dir / "in.sock"
            env = dict(os.environ, PYTHONPATH=str(REPO))
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "host_proxy", "--ingress", f"unix:{listen}=unix:{enclave.endpoint.path}",
                cwd=REPO, env=env, stderr=subprocess.PIPE,
            )  # fmt: skip
            try:
                deadline = time.monotonic() + 10
                while not listen.exists():
                    assert time.monotonic() < deadline, "the proxy did not start"
                    await asyncio.sleep(0.05)
                reader, writer = await open_client_path(listen)
                writer.write(b"through a real process")
                assert await reader.readexactly(22) == b"through a real process"
                process.send_signal(signal.SIGTERM)  # a live connection: it gets the graceful timeout
                await asyncio.sleep(0.2)
                writer.write(b"still")
                assert await reader.readexactly(5) == b"still"
                await close_client(writer)
                assert await asyncio.wait_for(process.wait(), 10) == 0
            finally:
                if process.returncode is None:
                    process.kill()
                    await process.wait()
            stderr = (await process.stderr.read()).decode()
        assert "waiting up to" in stderr and "stopped" in stderr
        assert not listen.exists()


async def open_client_path(path: Path):
    from host_proxy.addresses import UnixEndpoint

    return await open_client(UnixEndpoint(str(path)))
