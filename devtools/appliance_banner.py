"""What the appliance prints once it is up: where everything runs and the lines a user runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .appliance import Appliance


def user_snippet(appliance: Appliance) -> str:
    """The Python a user runs: attest, pin the SDK's client, remember and recall."""
    account = appliance.account
    return "\n".join(
        [
            "import asyncio",
            "from datetime import datetime, timezone",
            "from attestation.client import AttestedClient",
            "from attestation.measurements import load_expected_pcrs",
            "from attestation.trust import TrustRoot",
            "from memwal import MemWal",
            "",
            "async def main():",
            f"    pem = open({str(appliance.layout.test_root_path)!r}, 'rb').read()",
            "    trust_root = TrustRoot.from_pem(pem, allow_untrusted_test_root=True)  # simulator only",
            f"    expected_pcrs = load_expected_pcrs(open({str(appliance.layout.pcrs_path)!r}).read())",
            f"    async with AttestedClient.connect({appliance.url!r}, expected_pcrs=expected_pcrs,",
            "                                      trust_root=trust_root, now=lambda: datetime.now(timezone.utc),",
            f"                                      config_hash=bytes.fromhex({appliance.configuration_digest.hex()!r})) as session:",
            f"        memwal = MemWal.create(key={account.delegate_private_key_hex!r},",
            f"                               account_id={account.account_id!r}, server_url=session.url)",
            "        memwal._client = session.http   # every SDK request goes through the attested channel",
            "        print(await memwal.remember_and_wait('I am allergic to peanuts'))",
            "        print(await memwal.recall('food allergies'))",
            "",
            "asyncio.run(main())",
        ]
    )

def banner(appliance: Appliance) -> str:
    """What `make run` prints once everything is up."""
    isolation = (
        f"network namespace {appliance.namespace.name} (only lo)" if appliance.namespace else "plain process (NOT isolated)"
    )
    layout = appliance.layout
    routes = "\n".join(
        f"    {route.name:20} {layout.enclave_socket(route.vsock_port).name} → tcp:{route.host}:{route.port}"
        for route in appliance.routes
    )
    return "\n".join(
        [
            "",
            f"memwal-enclave appliance is up in {appliance.timings.get('total', 0):.1f} s "
            "(simulated Nitro attestation: a TEST root, not AWS).",
            f"  enclave        {isolation}; TLS terminates inside",
            f"  ingress        {appliance.url} → {appliance.layout.enclave_ingress}",
            "  egress (host proxy, the enclave's only way out):",
            routes,
            f"  manifest       {appliance.layout.manifest_path}",
            f"  PCRs           {appliance.layout.pcrs_path}",
            f"  test root      {appliance.layout.test_root_path}",
            f"  config sha384  {appliance.configuration_digest.hex()}",
            f"  logs           {appliance.layout.logs}",
            "",
            "Use it from the official SDK through the attested client (save as a file in the repository root",
            "and run it with .venv/bin/python, or set PYTHONPATH to the repository):",
            "",
            *("    " + line for line in user_snippet(appliance).splitlines()),
            "",
            "Press Ctrl-C to stop (the enclave, its namespace and every host process).",
        ]
    )
