"""The full test boot: the production image's application ramdisk under QEMU, driven like a real deployment.

The test EIF (tests/boot/overlay.py) is the production EIF with a test overlay and two command-line
words; its PCR2 equals the production EIF's. QEMU (TCG) boots it with virtio-net on user networking
(``restrict=on``), and the host runs what a Nitro parent runs (tests/boot/qemu_appliance.py): the host
proxy from one manifest over TCP instead of vsock, with PostgreSQL+pgvector, Redis and the localnet
behind its egress routes. Then, from the host, through the host proxy's public ingress:

    1. attestation: the attested client verifies /attestation under the simulator's test root, with
       the test EIF's PCR0/1/2 pinned (and refuses the production EIF's PCR0/1, which this is not)
    2. sealed provisioning: the operator seals the relayer's secrets to the attested key
    3. the official memwal SDK (PyPI, unmodified) remembers and recalls one memory through the
       attested client (memwal_enclave.AttestedMemWal): the relayer and sidecar inside the guest reach PostgreSQL, Redis, Sui,
       Walrus, Seal and the OpenAI stand-in only through the host proxy's egress routes

What differs from the production boot, line by line: tests/boot/__init__.py (and README).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
import pytest_asyncio
from memwal.types import RecallParams

from attestation.errors import PolicyError
from imagebuild import eif, init_program, pcr
from tests.boot import guest_init
from tests.boot.overlay import TEST_CMDLINE_ADDITIONS, build_test_image
from tests.boot.qemu import report_timing
from tests.boot.qemu_appliance import QemuAppliance

pytestmark = [pytest.mark.boot, pytest.mark.interop, pytest.mark.timeout(3600)]

RELAYER_LIMITS = {
    "RATE_LIMIT_DELEGATE_KEY_PER_MINUTE": "2000",
    "RATE_LIMIT_REQUESTS_PER_MINUTE": "2000",
    "RATE_LIMIT_REQUESTS_PER_HOUR": "20000",
    # Under TCG the sidecar's imports alone took ~18 s on a loaded machine, past the 15 s default.
    "SIDECAR_START_TIMEOUT_SECS": "600",
}
MEMORY = "The boat's spare propeller is in the blue locker on pier seven"
REMEMBER_TIMEOUT_MS = 600_000  # Seal, Walrus and a Sui transaction from inside a TCG guest


@pytest.fixture(scope="module")
def production(enclave_eif: Path) -> eif.EnclaveImage:
    return eif.parse(enclave_eif.read_bytes())


@pytest.fixture(scope="module")
def built(production):
    return build_test_image(production)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def appliance(built, tmp_path_factory):
    running = QemuAppliance(tmp_path_factory.mktemp("qemu-appliance"), built, provision=False, relayer_env=RELAYER_LIMITS)
    async with running:
        yield running
    print("\nfull test boot timings (s):", json.dumps({key: round(value, 1) for key, value in running.timings.items()}), file=sys.__stderr__)


class TestTestImage:
    def test_the_application_measurement_is_the_production_one(self, production, built):
        production_pcrs = pcr.measure(production)
        assert built.image.ramdisks[1] == production.ramdisks[1]
        assert built.measurements.pcr2 == production_pcrs.pcr2
        # The command line and the bootstrap ramdisk differ, so PCR1 (and PCR0) must.
        assert built.measurements.pcr1 != production_pcrs.pcr1 and built.measurements.pcr0 != production_pcrs.pcr0
        assert built.image.kernel == production.kernel
        assert built.image.cmdline.decode() == f"{production.cmdline.decode()} {TEST_CMDLINE_ADDITIONS}"
        assert built.image.ramdisks[0] == production.ramdisks[0] + built.overlay
        assert pcr.measure(eif.parse(built.eif_bytes)) == built.measurements
        print(f"\nPCR2 of the production and the test EIF: {production_pcrs.pcr2.hex()}", file=sys.__stderr__)


@pytest.mark.asyncio(loop_scope="session")
class TestFullBoot:
    async def test_boots_the_image_and_attests_as_the_test_eif(self, appliance, production):
        console = appliance.machine.console()
        assert "testinit: import failed" not in console, console[console.index("testinit: import failed") :][:4000]
        assert init_program.HEARTBEAT_ABSENT_MESSAGE in console
        assert init_program.exec_message(guest_init.runtime_arguments(init_program.INTERPRETER)) in console
        production_pcrs = pcr.measure(production)
        wrong = {0: production_pcrs.pcr0, 1: production_pcrs.pcr1, 2: production_pcrs.pcr2}
        with pytest.raises(PolicyError, match="PCR0 mismatch"):
            async with appliance.attested_session(expected_pcrs=wrong):
                pass
        async with appliance.attested_session() as session:
            pcrs = session.enclave.document.pcrs
            assert pcrs[2] == production_pcrs.pcr2 and pcrs[0] == appliance.test_image.measurements.pcr0
            health = (await session.http.get("/health")).json()
            assert health["enclave"]["relayer"] == "waiting-for-secrets"
        report_timing("test boot, every module imported", appliance.timings["qemu_imported"])
        report_timing("test boot, attested TLS served", appliance.timings["qemu_serving"])

    async def test_provision_then_the_sdk_remembers_and_recalls(self, appliance):
        started = time.monotonic()
        await appliance.provision()
        await appliance.create_demo_account()
        provisioned_at = appliance.machine.elapsed()
        account = appliance.account
        memwal = appliance.attested_memwal(account.delegate_private_key_hex, account.account_id, namespace="qemu")
        try:
            enclave = await memwal.attest()
            assert enclave.document.pcrs[2] == appliance.test_image.measurements.pcr2
            accepted = await memwal.remember(MEMORY)
            done = await memwal.wait_for_remember_job(accepted.job_id, poll_interval_ms=1000, timeout_ms=REMEMBER_TIMEOUT_MS)
            assert done.owner == account.owner_address
            recalled = await memwal.recall(RecallParams(query="where is the spare propeller", limit=5))
            assert [memory.text for memory in recalled.results] == [MEMORY]
        finally:
            await memwal.close()
        report_timing("test boot, provisioned and relayer ready", provisioned_at)
        report_timing("test boot, remember → recall done", appliance.machine.elapsed())
        report_timing("provision + account + remember + recall", time.monotonic() - started)
