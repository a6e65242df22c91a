"""The parent's services for its enclave: credentials (file and IMDSv2), wired from the manifest by the CLI."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from host_proxy.addresses import UnixEndpoint
from host_proxy.cli import build_parser, settings_from_arguments
from host_proxy.credentials import CredentialsUnavailable, FileCredentials, ImdsCredentials, decode_frame
from host_proxy.host_services import CredentialsServer

ROLE = {"Code": "Success", "AccessKeyId": "ASIAEXAMPLE", "SecretAccessKey": "role-secret", "Token": "role-token",
        "Expiration": "2026-11-29T18:00:00Z"}  # fmt: skip


def imds(calls: list[str]) -> Starlette:
    """IMDSv2 as EC2 serves it: a PUT for a token, then GETs that must carry it."""

    async def token(request: Request) -> Response:
        calls.append("token")
        assert request.headers["x-aws-ec2-metadata-token-ttl-seconds"] == "21600"
        return PlainTextResponse("imds-token")

    async def roles(request: Request) -> Response:
        if request.headers.get("x-aws-ec2-metadata-token") != "imds-token":
            return PlainTextResponse("", status_code=401)
        return PlainTextResponse("memwal-parent")

    async def role(request: Request) -> Response:
        if request.headers.get("x-aws-ec2-metadata-token") != "imds-token":
            return PlainTextResponse("", status_code=401)
        return JSONResponse(ROLE)

    return Starlette(routes=[
        Route("/latest/api/token", token, methods=["PUT"]),
        Route("/latest/meta-data/iam/security-credentials/", roles),
        Route("/latest/meta-data/iam/security-credentials/memwal-parent", role),
    ])  # fmt: skip


async def test_imds_v2_credentials_are_fetched_once_until_near_expiry():
    calls: list[str] = []
    now = [datetime(2026, 11, 29, 12, 0, tzinfo=UTC)]
    source = ImdsCredentials(base_url="http://imds.test", clock=lambda: now[0], transport=httpx.ASGITransport(app=imds(calls)))
    first = await source.current()
    assert (first.access_key_id, first.token) == ("ASIAEXAMPLE", "role-token") and "role-secret" not in repr(first)
    await source.current()
    assert calls == ["token"]
    now[0] += timedelta(hours=5, minutes=56)  # within five minutes of expiry: fetched again
    await source.current()
    assert calls == ["token", "token"]


async def test_the_credentials_channel_hands_over_one_frame(tmp_path):
    (tmp_path / "credentials.json").write_text(json.dumps(ROLE))
    server = CredentialsServer(UnixEndpoint(str(tmp_path / "credentials.sock")), FileCredentials(tmp_path / "credentials.json"))
    await server.start()
    try:
        reader, writer = await asyncio.open_unix_connection(str(tmp_path / "credentials.sock"))
        frame = await reader.read()
        writer.close()
    finally:
        await server.close()
    assert decode_frame(frame).secret_access_key == "role-secret"


async def test_a_missing_file_is_unavailable_not_a_crash(tmp_path):
    with pytest.raises(CredentialsUnavailable, match="cannot read"):
        await FileCredentials(tmp_path / "absent.json").current()


def test_the_cli_keeps_the_manifest_s_enclave_channels(tmp_path):
    manifest = tmp_path / "manifest.toml"
    manifest.write_text('format = 1\n[host]\naws_credentials = "imds"\n')
    arguments = build_parser().parse_args(["--manifest", str(manifest), "--transport", f"unix:{tmp_path}", "--idle-timeout", "30"])
    services = settings_from_arguments(arguments).services
    assert services is not None and services.credentials_source == "imds"
    assert str(services.logs).endswith("port-7002.sock") and str(services.time).endswith("port-7003.sock")
