"""AttestedMemWal / AttestedMemWalSync against the enclave runtime (simulated NSM, real TLS on loopback).

The relayer behind the runtime is the small stand-in of tests/enclave (its /health answers like the real
one), so these tests exercise the SDK's public behaviour over the attested channel: the SDK builds its own
client, closes it, the sync wrapper rebuilds it per call, the enclave restarts or sits behind a load
balancer with another one.
"""

from __future__ import annotations

import asyncio
import socket
from contextlib import asynccontextmanager

import pytest

from attestation.errors import PolicyError, ResponseSignatureError
from attestation.policy import PCRs
from attestation.testing import TestPki, deterministic_rng
from attestation.transport import EnclaveCache
from memwal_enclave import AttestedMemWal, AttestedMemWalSync, EnclaveConnection
from tests.enclave.conftest import IMAGE_PCRS, make_runtime, real_now

KEY = "11" * 32
ACCOUNT = "0x" + "ab" * 32
NEW_PCRS = {0: bytes.fromhex("dd" * 48), 1: IMAGE_PCRS[1], 2: IMAGE_PCRS[2]}


@pytest.fixture(scope="module")
def pki() -> TestPki:
    from datetime import timedelta

    return TestPki.create(now=real_now() - timedelta(hours=1), rng=deterministic_rng(b"sdk tests pki"))


def provisioned_runtime(pki, **options):
    return make_runtime(pki, **options)


@asynccontextmanager
async def serving_on(runtime, port: int = 0):
    """Serve ``runtime`` on 127.0.0.1:``port`` (0: any) with the relayer started; yields the URL."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(64)
    shutdown = asyncio.Event()
    runtime.operator_source._future().set_result(_secrets())  # provisioned: the relayer (stand-in) starts
    task = asyncio.create_task(runtime.serve(sock, shutdown))
    url = f"https://127.0.0.1:{sock.getsockname()[1]}"
    for _ in range(200):
        if runtime.state.value == "ready":
            break
        await asyncio.sleep(0.02)
    try:
        yield url
    finally:
        shutdown.set()
        await asyncio.wait_for(task, 30)
        sock.close()


def _secrets():
    from enclave.provisioning import ProvisionedSecrets

    return ProvisionedSecrets(values={"OPENAI_API_KEY": "sk-test"}, source="test")


def counting(runtime) -> list[int]:
    """Count the attestation documents the runtime's NSM signs."""
    calls = [0]
    original = runtime.attester.attestation

    def attestation(**fields):
        calls[0] += 1
        return original(**fields)

    runtime.attester.attestation = attestation
    return calls


def create(url, pki, runtime, *, pcrs=IMAGE_PCRS, sync=False):
    cls = AttestedMemWalSync if sync else AttestedMemWal
    return cls.create(KEY, ACCOUNT, url, pcrs=PCRs(pcrs), config_hash=runtime.configuration_digest.hex(),
                      trust_root=pki.trust_root())  # fmt: skip


class TestCreate:
    def test_fails_closed_without_what_the_operator_published(self, pki):
        with pytest.raises(ValueError, match="pcrs="):
            AttestedMemWal.create(KEY, ACCOUNT, "https://enclave.test")
        with pytest.raises(ValueError, match="published configuration"):
            AttestedMemWal.create(KEY, ACCOUNT, "https://enclave.test", pcrs=PCRs(IMAGE_PCRS), trust_root=pki.trust_root())
        with pytest.raises(ValueError, match="https://"):
            AttestedMemWal.create(KEY, ACCOUNT, "http://enclave.test", pcrs=PCRs(IMAGE_PCRS), config_hash="00" * 48)
        with pytest.raises(ValueError, match="server_url"):
            AttestedMemWal.create(KEY, ACCOUNT, env="prod", pcrs=PCRs(IMAGE_PCRS), config_hash="00" * 48)

    def test_the_sdk_constructor_cannot_bypass_attestation(self):
        from memwal.types import MemWalConfig

        with pytest.raises(TypeError, match="AttestedMemWal.create"):
            AttestedMemWal(MemWalConfig(key=KEY, account_id=ACCOUNT, server_url="https://enclave.test"))


class TestAsync:
    async def test_attests_once_and_survives_close(self, pki):
        runtime = provisioned_runtime(pki)
        documents = counting(runtime)
        async with serving_on(runtime) as url:
            memwal = create(url, pki, runtime)
            health = await memwal.health()
            assert (health.status, health.version) == ("ok", "test")
            assert memwal.connection.attested.configuration_sha384 == runtime.configuration_digest
            assert documents[0] == 1
            await memwal.close()  # the SDK drops its client; the next call builds an attested one again
            assert (await memwal.health()).status == "ok"
            assert documents[0] == 1  # the verified document is still within its lifetime: no new attestation
            await memwal.close()

    async def test_refuses_an_enclave_outside_the_published_measurements(self, pki):
        runtime = provisioned_runtime(pki)
        async with serving_on(runtime) as url:
            memwal = create(url, pki, runtime, pcrs=NEW_PCRS)
            with pytest.raises(PolicyError, match="PCR0 mismatch"):
                await memwal.health()

    async def test_accepts_any_published_set_during_a_rollout(self, pki):
        runtime = provisioned_runtime(pki, boot_pcrs=NEW_PCRS)
        async with serving_on(runtime) as url:
            memwal = AttestedMemWal.create(
                KEY, ACCOUNT, url, pcrs=[PCRs(IMAGE_PCRS), PCRs(NEW_PCRS)],
                config_hash=["00" * 48, runtime.configuration_digest.hex()], trust_root=pki.trust_root(),
            )  # fmt: skip
            assert (await memwal.health()).status == "ok"
            await memwal.close()

    async def test_reattests_an_enclave_that_restarted_with_new_keys(self, pki):
        first = provisioned_runtime(pki)
        async with serving_on(first) as backend, tcp_front([backend]) as url:
            memwal = create(url, pki, first)
            assert (await memwal.health()).status == "ok"
            port = int(url.rsplit(":", 1)[1])
        # the host's address stays; the enclave behind it died with its connections and came back
        second = provisioned_runtime(pki)  # same image and configuration, new TLS and identity keys
        assert second.identity.tls_spki_sha256 != first.identity.tls_spki_sha256
        documents = counting(second)
        async with serving_on(second) as backend, tcp_front([backend], port) as url:
            assert (await memwal.health()).status == "ok"  # the old connection is gone; the new key is attested
            assert documents[0] == 1
            assert memwal.connection.attested.identity_public_key == second.identity.signing_public_key
            await memwal.close()

    async def test_a_response_not_signed_by_the_attested_enclave_is_refused(self, pki):
        runtime = provisioned_runtime(pki)
        runtime.app._should_sign = lambda path: False  # a runtime that stopped signing
        async with serving_on(runtime) as url:
            memwal = create(url, pki, runtime)
            with pytest.raises(ResponseSignatureError):
                await memwal.health()
            await memwal.close()


class TestSync:
    async def test_each_call_gets_a_fresh_attested_client_without_a_new_attestation(self, pki):
        runtime = provisioned_runtime(pki)
        documents = counting(runtime)
        async with serving_on(runtime) as url:
            memwal = create(url, pki, runtime, sync=True)

            def calls():
                first = memwal.health()
                second = memwal.health()  # MemWalSync rebuilds and closes the SDK's client per call
                enclave = memwal.attest()
                memwal.close()
                return first, second, enclave

            first, second, enclave = await asyncio.to_thread(calls)
            assert first.status == second.status == "ok"
            assert enclave.identity_public_key == runtime.identity.signing_public_key
            assert documents[0] == 2  # the first call, then attest() on request


class TestSeveralEnclavesBehindALoadBalancer:
    async def test_each_connection_is_attested_and_checked_against_its_own_enclave(self, pki):
        runtimes = [provisioned_runtime(pki), provisioned_runtime(pki)]
        async with serving_on(runtimes[0]) as first, serving_on(runtimes[1]) as second:
            async with tcp_front([first, second]) as url:
                connection = EnclaveConnection(url, policy=create(url, pki, runtimes[0]).connection.policy)
                async with connection.http_client() as http:
                    for _ in range(6):  # "connection: close" makes every request a new TCP connection
                        response = await http.get("/health", headers={"connection": "close"})
                        assert response.status_code == 200
                keys = {enclave.identity_public_key for enclave in _enclaves(connection.cache)}
                assert keys == {runtime.identity.signing_public_key for runtime in runtimes}


def _enclaves(cache: EnclaveCache):
    return list(cache._entries.values())


@asynccontextmanager
async def tcp_front(urls: list[str], port: int = 0):
    """A TCP-passthrough load balancer on loopback (round robin per connection); on exit every connection
    through it is dropped, as when the machine behind it dies."""
    ports = [int(url.rsplit(":", 1)[1]) for url in urls]
    turn = [0]
    writers: list[asyncio.StreamWriter] = []

    async def pipe(reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def accepted(reader, writer):
        backend = ports[turn[0] % len(ports)]
        turn[0] += 1
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", backend)
        writers.extend((writer, upstream_writer))
        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    server = await asyncio.start_server(accepted, "127.0.0.1", port, reuse_address=True)
    try:
        yield f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        for writer in writers:
            writer.transport.abort()
