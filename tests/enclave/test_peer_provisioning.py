"""Peer provisioning: three simulated enclaves of one deployment, the host's relay between them.

Every enclave runs the same image (PCRs) and the same manifest, whose [provisioning] lists two peers,
``peer-a`` and ``peer-b`` (each an [[egress]] route), then the operator. The newcomer reaches a peer only
through its egress tunnel (a Unix socket, as vsock is on Nitro) → a recording tap → the real host proxy →
the peer's TLS ingress, so the test can show what the host carried.

A is provisioned by the operator; B, started next, gets the secrets from A; A dies; C, started last, finds
A gone and gets them from B. No secret ever crosses the host in the clear.
"""

from __future__ import annotations

import asyncio
import hashlib
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
import pytest

from attestation.client import AttestedClient, provision_secrets
from attestation.policy import PCRs
from devtools.appliance_capture import RecordingTap, TrafficCapture
from enclave.egress import EgressAllowlist
from enclave.peer_provisioning import Challenges
from host_proxy.addresses import TcpEndpoint, UnixEndpoint
from host_proxy.proxy import Proxy
from host_proxy.settings import Route, Settings
from manifest import EgressRoute

from .conftest import IMAGE_PCRS, RelayerStarter, document_for, document_with, make_runtime, real_now, serving

SECRETS = {"OPENAI_API_KEY": "sk-peer-" + "9" * 24, "REDIS_URL": "redis://:peer-pa55@cache/0"}
PEERS = {"peer-a": 8201, "peer-b": 8202}


def deployment():
    routes = [EgressRoute(name, f"{name}.memwal.test", 8443, port) for name, port in PEERS.items()]
    return document_with(
        document_for(), egress=routes,
        provisioning={"sources": ["peer", "operator"], "retry_seconds": 1,
                      "peer": {"peers": [f"https://{name}.memwal.test:8443" for name in PEERS]}},
    )  # fmt: skip


@asynccontextmanager
async def host_relay(directory, targets: dict[str, int], capture: TrafficCapture):
    """enclave tunnel socket → recording tap → host proxy → tcp 127.0.0.1:<peer port>, per peer name."""
    routes = [Route("egress", UnixEndpoint(str(directory / f"host-{name}.sock")), TcpEndpoint("127.0.0.1", port), name)
              for name, port in targets.items()]  # fmt: skip
    proxy = Proxy(Settings(tuple(routes)))
    await proxy.start()
    taps = [RecordingTap(name, directory / f"enclave-{name}.sock", directory / f"host-{name}.sock", capture)
            for name in targets]  # fmt: skip
    for tap in taps:
        await tap.start()
    try:
        yield
    finally:
        for tap in taps:
            await tap.close()
        await proxy.shutdown()


def tunnels(directory) -> EgressAllowlist:
    """The enclaves' allowlist: each peer name through its tunnel socket (the host relay listens behind it)."""
    return EgressAllowlist({(f"{name}.memwal.test", 8443): UnixEndpoint(str(directory / f"enclave-{name}.sock"))
                            for name in PEERS})  # fmt: skip


async def wait_ready(runtime, stack, seconds=30.0):
    task = asyncio.create_task(runtime.run_relayer(stack, asyncio.Event()))
    await asyncio.wait_for(asyncio.shield(task), seconds)


@pytest.fixture
def document():
    return deployment()


class TestPeerProvisioning:
    async def test_two_enclaves_then_a_third_after_the_first_dies(self, tee_pki, tmp_path, document):
        capture = TrafficCapture()
        async with AsyncExitStack() as stack:
            first = make_runtime(tee_pki, document=document)
            first_url = await stack.enter_async_context(serving(first))
            first_exit = stack.pop_all()  # A's server: closed below, while the others keep running
            async with AttestedClient.connect(first_url, expected_pcrs=PCRs(IMAGE_PCRS), trust_root=tee_pki.trust_root(),
                                              now=real_now, config_hash=first.configuration_digest) as session:  # fmt: skip
                assert (await provision_secrets(session, SECRETS)).status_code == 202
            await wait_ready(first, stack)
            assert first.secrets.source == "sealed-envelope"

            second_starter = RelayerStarter()
            second = make_runtime(tee_pki, document=document, starter=second_starter, egress=tunnels(tmp_path))
            second_url = await stack.enter_async_context(serving(second))
            ports = {"peer-a": int(first_url.rsplit(":", 1)[1]), "peer-b": int(second_url.rsplit(":", 1)[1])}
            await stack.enter_async_context(host_relay(tmp_path, ports, capture))
            await wait_ready(second, stack)
            assert second.secrets.source == "peer" and dict(second.secrets.values) == SECRETS
            assert second_starter.calls[0][1]["OPENAI_API_KEY"] == SECRETS["OPENAI_API_KEY"]
            assert capture.bytes_on("peer-a") > 0

            await first_exit.aclose()  # A dies

            third = make_runtime(tee_pki, document=document, egress=tunnels(tmp_path))
            await stack.enter_async_context(serving(third))
            await wait_ready(third, stack)
            assert third.secrets.source == "peer" and dict(third.secrets.values) == SECRETS
            assert capture.bytes_on("peer-b") > 0
        for value in SECRETS.values():
            assert capture.routes_containing(value.encode()) == set()

    async def test_a_different_configuration_gets_nothing(self, tee_pki, tmp_path, document):
        capture = TrafficCapture()
        async with AsyncExitStack() as stack:
            provisioned = make_runtime(tee_pki, document=document)
            url = await stack.enter_async_context(serving(provisioned))
            provisioned.operator_source._future().set_result(_secrets())
            await wait_ready(provisioned, stack)
            other = document_with(deployment(), provisioning={**document.provisioning.as_json(), "retry_seconds": 2})
            assert other.digest() != document.digest()
            newcomer = make_runtime(tee_pki, document=other, egress=tunnels(tmp_path))
            await stack.enter_async_context(host_relay(tmp_path, {"peer-a": int(url.rsplit(":", 1)[1])}, capture))
            peer_source = newcomer.secret_source._automatic[0]
            with pytest.raises(Exception, match="configuration hash mismatch"):
                await peer_source._from("https://peer-a.memwal.test:8443")

    async def test_the_provider_refuses_unknown_or_reused_challenges_and_other_images(self, tee_pki, document):
        provider_runtime = make_runtime(tee_pki, document=document)
        provider_runtime.operator_source._future().set_result(_secrets())
        async with AsyncExitStack() as stack:
            await wait_ready(provider_runtime, stack)
        transport = httpx.ASGITransport(app=provider_runtime.app)
        newcomer = make_runtime(tee_pki, document=document)
        async with httpx.AsyncClient(transport=transport, base_url="https://peer.test") as http:
            nonce = bytes.fromhex((await http.post("/peer/challenge")).json()["nonce"])
            document_bytes = newcomer.attester.attestation(user_data=newcomer.user_data, nonce=nonce,
                                                           public_key=newcomer.identity.signing_public_key)  # fmt: skip
            first = await http.post("/peer/secrets", content=document_bytes)
            assert first.status_code == 200 and first.content[:4] == b"MWP1"
            assert hashlib.sha256(document_bytes).digest() in first.content[:80]
            again = await http.post("/peer/secrets", content=document_bytes)
            assert (again.status_code, again.json()) == (403, {"error": "unknown or used challenge"})
            unknown = newcomer.attester.attestation(user_data=newcomer.user_data, nonce=b"\x07" * 32,
                                                    public_key=newcomer.identity.signing_public_key)  # fmt: skip
            assert (await http.post("/peer/secrets", content=unknown)).status_code == 403
            other_image = make_runtime(tee_pki, document=document, boot_pcrs={**IMAGE_PCRS, 0: bytes.fromhex("ee" * 48)})
            nonce = bytes.fromhex((await http.post("/peer/challenge")).json()["nonce"])
            forged = other_image.attester.attestation(user_data=other_image.user_data, nonce=nonce,
                                                      public_key=other_image.identity.signing_public_key)  # fmt: skip
            refused = await http.post("/peer/secrets", content=forged)
            assert (refused.status_code, refused.json()) == (403, {"error": "attestation refused"})

    async def test_an_unprovisioned_peer_answers_503(self, tee_pki, document):
        runtime = make_runtime(tee_pki, document=document)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=runtime.app), base_url="https://peer.test") as http:
            assert (await http.post("/peer/challenge")).status_code == 503
            assert (await http.post("/peer/secrets", content=b"x")).status_code == 503


class TestChallenges:
    def test_single_use_and_expiring(self):
        now = [0.0]
        challenges = Challenges(clock=lambda: now[0])
        nonce = challenges.issue()
        assert challenges.consume(nonce) and not challenges.consume(nonce)
        late = challenges.issue()
        now[0] = 61.0
        assert not challenges.consume(late)
        assert not challenges.consume(None)


def _secrets():
    from enclave.provisioning import ProvisionedSecrets

    return ProvisionedSecrets(values=SECRETS, source="test")
