"""The appliance end to end, as root: the enclave runtime in a network namespace with only ``lo``, the
host proxy as its only way out, and a recording tap on every socket that crosses the enclave boundary.

The appliance runs as `make run` does by default: the embedding model inside the enclave
(EMBEDDING_PROVIDER=local) and EGRESS_POLICY=private with no LLM route allowlisted for plaintext. The
official memwal SDK (unmodified) talks to it through the attested client: remember → wait → recall (semantic)
→ ask, which the policy refuses with a 403 that says why. Then we look at every byte the host carried:

(a) no secret (server wallet key, sidecar token, delegate key, OpenAI key) in any captured stream, and
    the memory text on no route at all: not even the LLM's, which carried nothing;
(b) from inside the namespace there is no route out except the tunnels, and egress to a destination
    off the allowlist is refused inside;
(c) the attested client refuses wrong PCRs, and /api/* answers 503 before provisioning.

Needs root (``ip netns``). CI runs as root; elsewhere this module errors on purpose instead of skipping.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import pytest_asyncio
from memwal import MemWal
from memwal.types import RecallParams

from attestation.errors import PolicyError
from chain.keys import decode_sui_private_key
from devtools.appliance import REPOSITORY, Appliance
from devtools.appliance_capture import TrafficCapture
from tests.e2e.mcp_client import DelegateSignature, HttpxBridge, call, mcp_session
from tests.e2e.signing import signed_headers

pytestmark = [
    pytest.mark.slow,
    pytest.mark.e2e,
    pytest.mark.interop,
    pytest.mark.database,
    pytest.mark.asyncio(loop_scope="session"),
]

RELAYER_LIMITS = {
    "RATE_LIMIT_DELEGATE_KEY_PER_MINUTE": "2000",
    "RATE_LIMIT_REQUESTS_PER_MINUTE": "2000",
    "RATE_LIMIT_REQUESTS_PER_HOUR": "20000",
    "JOB_LEASE_SECS": "5",
}
TOKEN = secrets.token_hex(8)
MEMORY = f"The spare key to the {TOKEN} shed is under the third flowerpot"
PROBE_TIMEOUT_SECONDS = 60.0

# Runs inside the namespace: what can the "enclave" reach?
PROBE = r"""
import asyncio, errno, json, os, socket, sys
import httpx
from enclave.egress import EgressAllowlist, EgressTransport
from enclave.errors import EgressDenied

plan = json.loads(sys.argv[1])

def dial(host, port):
    try:
        with socket.create_connection((host, port), timeout=3):
            return "connected"
    except OSError as error:
        return errno.errorcode.get(error.errno, str(error))

async def egress(url):
    transport = EgressTransport(EgressAllowlist.parse(os.environ["ENCLAVE_EGRESS"]))
    async with httpx.AsyncClient(transport=transport, timeout=5) as client:
        try:
            return "status %d" % (await client.get(url)).status_code
        except EgressDenied as error:
            return "denied: %s" % error
        except httpx.HTTPError as error:
            return "%s: %s" % (type(error).__name__, error)

print(json.dumps({
    "interfaces": sorted(name for _, name in socket.if_nameindex()),
    "dial": {key: dial(*target) for key, target in plan["dial"].items()},
    "egress": {key: asyncio.run(egress(url)) for key, url in plan["egress"].items()},
}))
"""


def require_root() -> None:
    if os.geteuid() != 0:
        raise RuntimeError(
            "tests/e2e/test_appliance.py must run as root: it creates a network namespace (ip netns add). CI runs as root."
        )


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def appliance(tmp_path_factory):
    require_root()
    started = time.monotonic()
    running = Appliance(
        tmp_path_factory.mktemp("appliance"), port=0, isolate=True, capture=TrafficCapture(), provision=False,
        relayer_env=RELAYER_LIMITS, progress=print, embeddings="local", egress_policy="private",
    )  # fmt: skip
    async with running:
        running.timings["start_to_enclave_serving"] = time.monotonic() - started
        yield running
        namespace = running.namespace
    assert namespace is not None and not namespace.exists(), "the network namespace outlived the appliance"
    print("appliance timings (s):", json.dumps({key: round(value, 2) for key, value in running.timings.items()}))


def encodings(value: bytes) -> list[bytes]:
    """``value`` raw, as hex, and as base64 at each of the three alignments it can have inside a longer blob."""
    forms = [value, value.hex().encode(), value.hex().upper().encode()]
    for offset in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(b"\0" * offset + value)
            forms.append(encoded[4 if offset else 0 : -4])
    return forms


def routes_carrying(capture: TrafficCapture, value: bytes) -> set[str]:
    found: set[str] = set()
    for form in encodings(value):
        found |= capture.routes_containing(form)
    return found


def host_address() -> str | None:
    """A global IPv4 address of this host (not loopback), if it has one."""
    result = subprocess.run(["ip", "-j", "-4", "addr", "show", "scope", "global"], capture_output=True, text=True)
    for interface in json.loads(result.stdout or "[]"):
        for address in interface.get("addr_info", []):
            if address.get("local"):
                return address["local"]
    return None


async def test_refuses_wrong_pcrs_and_answers_503_before_provisioning(appliance):
    assert not appliance.provisioned, "this test must run before the SDK flow provisions the enclave"
    wrong = {index: bytes([0x5A]) * 48 for index in (0, 1, 2)}
    with pytest.raises(PolicyError, match="PCR0 mismatch"):
        async with appliance.attested_session(expected_pcrs=wrong):
            pass
    async with appliance.attested_session() as session:
        response = await session.http.post("/api/recall", json={"query": "anything", "limit": 1})
        assert response.status_code == 503
        assert response.json() == {"error": "enclave not provisioned"}
        health = (await session.http.get("/health")).json()
        assert health["enclave"]["relayer"] == "waiting-for-secrets"


async def test_sdk_flow_through_the_appliance_shows_the_host_no_secret(appliance):
    started = time.monotonic()
    await appliance.provision()
    await appliance.create_demo_account()
    appliance.timings["provision_and_account"] = time.monotonic() - started
    account = appliance.account
    started = time.monotonic()
    async with appliance.attested_session() as session:
        memwal = MemWal.create(
            key=account.delegate_private_key_hex, account_id=account.account_id, server_url=session.url,
            namespace="appliance",
        )  # fmt: skip
        memwal._client = session.http
        accepted = await memwal.remember(MEMORY)
        done = await memwal.wait_for_remember_job(accepted.job_id, poll_interval_ms=200, timeout_ms=60_000)
        assert done.owner == account.owner_address
        recalled = await memwal.recall(RecallParams(query="where did I hide the key to the garden hut", limit=5))
        assert [memory.text for memory in recalled.results] == [MEMORY]
        with pytest.raises(Exception, match="403") as refused:
            await memwal.ask("Where is the spare key to my shed?", limit=5)
        assert "egress policy is private" in str(refused.value) + str(getattr(refused.value, "body", ""))
        assert memwal._client is session.http
    appliance.timings["sdk_flow"] = time.monotonic() - started

    capture = appliance.capture
    assert capture is not None
    # The tap really saw the traffic: TLS on ingress, bytes on every upstream the flow needs.
    ingress = [c for c in capture.connections if c.route == "ingress"]
    assert ingress and all(c.to_target.startswith(b"\x16\x03") for c in ingress), "ingress is not TLS from byte 0"
    for route in ("sui-rpc", "walrus-publisher", "postgres", "redis"):
        assert capture.bytes_on(route) > 0, f"nothing crossed the {route} tunnel"
    # Embeddings ran inside and the policy refused ask before any call: the LLM route carried no byte.
    assert capture.bytes_on("openai") == 0
    assert capture.bytes_on("seal-1") + capture.bytes_on("seal-2") + capture.bytes_on("seal-3") > 0

    provisioned = appliance.provisioned_secrets
    wallet_keys = provisioned["SERVER_SUI_PRIVATE_KEYS"].split(",")
    never_anywhere = {
        "OpenAI API key": provisioned["OPENAI_API_KEY"].encode(),
        "sidecar token": provisioned["SIDECAR_AUTH_TOKEN"].encode(),
        "delegate private key (hex)": account.delegate_private_key_hex.encode(),
        "delegate private key (seed)": bytes.fromhex(account.delegate_private_key_hex),
    }
    for index, key in enumerate(wallet_keys):
        never_anywhere[f"server wallet key {index}"] = key.encode()
        never_anywhere[f"server wallet seed {index}"] = decode_sui_private_key(key)
    for name, value in never_anywhere.items():
        assert routes_carrying(capture, value) == set(), f"{name} crossed the host in clear"

    # The memory text crossed no route: not ingress (TLS), Walrus (Seal ciphertext), PostgreSQL (ciphertext
    # and vectors), Redis, Sui, Seal, nor the LLM or embedding upstream (none in this mode).
    assert routes_carrying(capture, MEMORY.encode()) == set()
    assert routes_carrying(capture, TOKEN.encode()) == set()
    # The taps do see clear text where it crosses: the owner's address goes to PostgreSQL in clear.
    assert "postgres" in routes_carrying(capture, account.owner_address.encode())


async def test_mcp_tools_through_the_appliance(appliance):
    """The official mcp client over attested TLS drives every tool, signed by the delegate key."""
    assert appliance.provisioned, "runs after the SDK flow provisioned the enclave"
    account = appliance.account
    memory = f"The {TOKEN} bicycle lock code is written inside the blue notebook"
    auth = DelegateSignature(account.delegate_private_key_hex, account.account_id, appliance.info["memwal_package_id"])
    async with appliance.attested_session() as attested, \
            mcp_session(f"{attested.url}/api/mcp", auth=auth, transport=HttpxBridge(attested.http)) as session:
        assert {tool.name for tool in (await session.list_tools()).tools} >= {"remember", "recall", "list_namespaces"}
        accepted = await call(session, "remember", {"text": memory, "namespace": "appliance-mcp"})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            path = f"/api/remember/{accepted['job_id']}"
            status = (await attested.http.get(path, headers=signed_headers(
                bytes.fromhex(account.delegate_private_key_hex), "GET", path, b"", account_id=account.account_id))).json()
            if status["status"] in ("done", "failed"):
                break
            await asyncio.sleep(0.2)
        assert status["status"] == "done", status
        recalled = await call(session, "recall", {"query": "bicycle lock code", "namespace": "appliance-mcp", "limit": 3})
        assert [hit["text"] for hit in recalled["results"]] == [memory]
        listed = await call(session, "list_namespaces", {})
        assert "appliance-mcp" in {entry["name"] for entry in listed["namespaces"]}
        # The appliance's private egress policy lets no memory text reach an LLM: ask and analyze answer the
        # route's 403 (and why) as tool errors.
        for tool, arguments in (("ask", {"question": "Where is the lock code?", "namespace": "appliance-mcp"}),
                                ("analyze", {"text": "I cycle to work.", "namespace": "appliance-mcp"})):
            refused = await session.call_tool(tool, arguments)
            text = refused.content[0].text
            assert refused.is_error and f"{tool} failed (403)" in text and "egress policy is private" in text, text
        forgotten = await call(session, "forget", {"memory_id": recalled["results"][0]["memory_id"]})
        assert forgotten["reason"] == "forgotten"
        after = await call(session, "recall", {"query": "bicycle lock code", "namespace": "appliance-mcp", "limit": 3})
        assert after["results"] == []
    assert appliance.capture is not None
    assert routes_carrying(appliance.capture, memory.encode()) == set()


async def test_the_enclave_has_no_route_out_but_its_tunnels(appliance):
    assert appliance.namespace is not None
    sui = next(route for route in appliance.routes if route.name == "sui-rpc")
    # A host-side listener on every address: reachable from the host, must not be from the namespace.
    control = socket.create_server(("0.0.0.0", 0))
    try:
        control_port = control.getsockname()[1]
        with socket.create_connection(("127.0.0.1", control_port), timeout=3):
            pass
        dial = {
            "through the sui-rpc forwarder": ["127.0.0.1", sui.port],
            "host listener via loopback": ["127.0.0.1", control_port],
            "loopback port with no forwarder": ["127.0.0.1", appliance.layout.port],
        }
        address = host_address()
        if address is not None:
            with socket.create_connection((address, control_port), timeout=3):
                pass  # the host itself reaches it: a failure from the namespace is the namespace's doing
            dial["host listener via host address"] = [address, control_port]
            dial["localnet port via host address"] = [address, sui.port]
        plan = {
            "dial": dial,
            "egress": {
                "allowlisted": f"http://{sui.host}:{sui.port}/",
                "host listener": f"http://127.0.0.1:{control_port}/",
                "public name": "https://example.com/",
            },
        }
        process = await asyncio.create_subprocess_exec(
            *appliance.namespace.command([sys.executable, "-c", PROBE, json.dumps(plan)]),
            env={**os.environ, "ENCLAVE_EGRESS": appliance.egress_allowlist, "PYTHONPATH": str(REPOSITORY)},
            cwd=Path(REPOSITORY), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            stdout, stderr = await asyncio.wait_for(process.communicate(), PROBE_TIMEOUT_SECONDS)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise
    finally:
        control.close()
    assert process.returncode == 0, stderr.decode()
    seen = json.loads(stdout)
    assert seen["interfaces"] == ["lo"]
    assert seen["dial"]["through the sui-rpc forwarder"] == "connected"
    assert seen["dial"]["host listener via loopback"] == "ECONNREFUSED"  # the namespace's lo is its own
    assert seen["dial"]["loopback port with no forwarder"] == "ECONNREFUSED"
    if address is not None:
        assert seen["dial"]["host listener via host address"] == "ENETUNREACH"
        assert seen["dial"]["localnet port via host address"] == "ENETUNREACH"
    assert seen["egress"]["allowlisted"].startswith("status ")
    assert seen["egress"]["host listener"] == (
        f"denied: egress to 127.0.0.1:{control_port} is not on the enclave's allowlist"
    )
    assert seen["egress"]["public name"] == "denied: egress to example.com:443 is not on the enclave's allowlist"
