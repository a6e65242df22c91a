"""The official memwal SDK (unmodified) through the attested client to a provisioned runtime whose
relayer is the real stack: localnet stand-ins + embedded databases (from DevStack), then the runtime
starts the real relayer and sidecar in-process via relayer.serve.start_relayer once provisioned.

The SDK creates its httpx client lazily (``MemWal._http`` returns ``self._client``), so
``memwal._client = session.http`` makes every SDK request go through the pinned, signature-checking client.
"""

from __future__ import annotations

import asyncio

import pytest
import pytest_asyncio
from memwal import MemWal
from memwal.types import RecallParams

from attestation.client import AttestedClient, provision_secrets
from attestation.policy import PCRs
from attestation.provisioning import PROVISIONABLE_SECRETS
from attestation.simulator import SimulatedNsm
from devtools.devstack import DevStack
from enclave.egress import EgressAllowlist
from enclave.runtime import EnclaveRuntime
from enclave.tls_identity import generate_identity
from relayer.settings import Settings

from .conftest import IMAGE_PCRS, document_for, real_now, serving

pytestmark = [pytest.mark.slow, pytest.mark.e2e, pytest.mark.interop, pytest.mark.database]

RELAYER_LIMITS = {
    "RATE_LIMIT_DELEGATE_KEY_PER_MINUTE": "2000",
    "RATE_LIMIT_REQUESTS_PER_MINUTE": "2000",
    "RATE_LIMIT_REQUESTS_PER_HOUR": "20000",
    "JOB_LEASE_SECS": "5",
    "LOG_FORMAT": "json",
}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def localnet(tmp_path_factory, database_url, redis_url):
    """Localnet + an account (DevStack's pieces, without its own relayer and indexer processes);
    databases from the session fixtures of tests/conftest.py."""
    from localnet.cli import create_account

    stack = DevStack(
        tmp_path_factory.mktemp("tee-devstack"),
        database_url=database_url,
        redis_url=redis_url,
        relayer_env=RELAYER_LIMITS,
    )
    async with stack._stack:
        (stack.data_dir / "logs").mkdir(parents=True, exist_ok=True, mode=0o700)
        await stack._start_databases()
        await stack._start_localnet()
        stack.account = await create_account(stack.info, label="tee")
        yield stack


async def test_official_sdk_through_the_attested_client(localnet, tee_pki):
    environment = localnet.relayer_environment()
    secrets = {name: environment.pop(name) for name in sorted(PROVISIONABLE_SECRETS) if environment.get(name)}
    assert {"SERVER_SUI_PRIVATE_KEYS", "DATABASE_URL", "REDIS_URL", "OPENAI_API_KEY"} <= set(secrets)
    Settings.from_environ(environment).validate()
    runtime = EnclaveRuntime(
        document=document_for(environment, tls_hostname="localhost"),
        relayer_environment=environment,
        attester=SimulatedNsm(pki=tee_pki, clock=real_now, boot_pcrs=IMAGE_PCRS),
        identity=generate_identity(hostname="localhost", now=real_now()),
        egress=EgressAllowlist.parse(""),
        clock=real_now,
    )  # relayer_starter defaults to relayer.serve.start_relayer: the real relayer + sidecar
    runtime.commit()
    async with serving(runtime) as url:
        async with AttestedClient.connect(
            url, expected_pcrs=PCRs(IMAGE_PCRS), trust_root=tee_pki.trust_root(), now=real_now,
            config_hash=runtime.configuration_digest,
        ) as session:  # fmt: skip
            memwal = MemWal.create(
                key=localnet.account.delegate_private_key_hex,
                account_id=localnet.account.account_id,
                server_url=session.url,
                namespace="tee",
            )
            memwal._client = session.http  # the SDK, unmodified, now talks through the pinned client
            with pytest.raises(Exception, match="503|not provisioned"):
                await memwal.remember("too early")
            assert (await provision_secrets(session, secrets)).status_code == 202
            for _ in range(600):
                state = (await session.http.get("/health")).json()["enclave"]["relayer"]
                if state in ("ready", "failed"):
                    break
                await asyncio.sleep(0.1)
            assert state == "ready"
            health = await memwal.health()
            assert health.status == "ok"
            accepted = await memwal.remember("I am allergic to peanuts")
            done = await memwal.wait_for_remember_job(accepted.job_id, poll_interval_ms=200, timeout_ms=60_000)
            assert done.owner == localnet.account.owner_address
            recalled = await memwal.recall(RecallParams(query="peanuts allergy", limit=5))
            assert [memory.text for memory in recalled.results] == ["I am allergic to peanuts"]
            assert memwal._client is session.http  # no silent fallback to an unpinned client
        assert session.http.is_closed
