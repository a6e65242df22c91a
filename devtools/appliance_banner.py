"""What the appliance prints once it is up, and the quick start it writes (the README's, with its values)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .appliance import Appliance

# The README's quick start shows these placeholders; tests/devtools/test_quickstart.py checks it is this text.
README_VALUES = {
    "url": "https://127.0.0.1:8443",
    "pcrs": ".data/appliance/pcrs.json",
    "manifest": ".data/appliance/manifest.toml",
    "test_root": ".data/appliance/simulator-test-root.pem",
    "key": "<delegate key hex>",
    "account": "0x<account id>",
}


def user_snippet(*, url: str, pcrs: str, manifest: str, test_root: str, key: str, account: str) -> str:
    """The quick start: the official SDK over the attested client, async then sync; no private attribute."""
    return f'''\
import asyncio

from attestation import TrustRoot
from memwal import RecallParams
from memwal_enclave import AttestedMemWal, AttestedMemWalSync

ENCLAVE = dict(
    server_url={url!r},
    pcrs={pcrs!r},  # the operator's published measurements
    manifest={manifest!r},  # the operator's published configuration (or config_hash="<sha384 hex>")
    # `make run` simulates Nitro under a TEST root; for a real enclave leave trust_root out (the AWS root).
    trust_root=TrustRoot.from_pem(open({test_root!r}, "rb").read(), allow_untrusted_test_root=True),
)
KEY = {key!r}
ACCOUNT = {account!r}


async def main() -> None:
    memwal = AttestedMemWal.create(KEY, ACCOUNT, namespace="quickstart", **ENCLAVE)
    enclave = await memwal.attest()  # optional: the first request attests anyway
    print("attested, configuration sha384", enclave.configuration_sha384.hex())
    print(await memwal.remember_and_wait("I am allergic to peanuts", poll_interval_ms=300))
    print(await memwal.recall(RecallParams(query="food allergies", limit=3)))
    await memwal.close()


asyncio.run(main())

with AttestedMemWalSync.create(KEY, ACCOUNT, namespace="quickstart", **ENCLAVE) as memwal:
    print(memwal.recall(RecallParams(query="peanuts", limit=3)))
'''


def privacy_line(appliance: Appliance) -> str:
    """Where memory text goes in this run (README "Privacy")."""
    embeddings = "all-MiniLM-L6-v2 inside the enclave" if appliance.embeddings == "local" else "the OpenAI-compatible stand-in"
    if appliance.egress_policy != "private":
        return f"embeddings: {embeddings}; egress policy open (embeddings and LLM upstreams see memory text)"
    llm = "the allowlisted LLM route only" if appliance.llm_plaintext else "nowhere: analyze/ask answer 403 (--allow-llm-plaintext)"
    return f"embeddings: {embeddings}; egress policy private, memory text leaves for {llm}"


def banner(appliance: Appliance) -> str:
    """What `make run` prints once everything is up."""
    isolation = (
        f"network namespace {appliance.namespace.name} (only lo)" if appliance.namespace else "plain process (NOT isolated)"
    )
    layout = appliance.layout
    routes = "\n".join(
        f"    {route.name:20} {layout.enclave_socket(route.vsock_port).name} → tcp:{route.host}:{route.port}"
        + ("  (allow_plaintext: the LLM may receive memory text)" if route.allow_plaintext else "")
        for route in appliance.routes
    )
    limits = "\n".join(f"    {name:36} {value}" for name, value in sorted(appliance.rate_limits.items()))
    account = appliance.account
    return "\n".join(
        [
            "",
            f"memwal-enclave appliance is up in {appliance.timings.get('total', 0):.1f} s "
            "(simulated Nitro attestation: a TEST root, not AWS).",
            f"  enclave        {isolation}; TLS terminates inside",
            f"  ingress        {appliance.url} → {appliance.layout.enclave_ingress}",
            f"  privacy        {privacy_line(appliance)}",
            "  egress (host proxy, the enclave's only way out):",
            routes,
            f"  manifest       {layout.manifest_path}",
            f"  PCRs           {layout.pcrs_path}",
            f"  test root      {layout.test_root_path} (kept across runs; --fresh starts over)",
            f"  config sha384  {appliance.configuration_digest.hex()}",
            f"  demo account   {account.account_id if account else '(none)'} ({layout.demo_account_path.name}, kept)",
            f"  logs           {layout.logs}",
            "  demo rate limits (raised from upstream's 30 points/min per delegate key):",
            limits,
            "",
            "Use it from the official SDK through the attested client: in any venv,",
            "",
            "    pip install ./client",
            f"    python {layout.quickstart_path}",
            "",
            "Verify it as an auditor would:",
            "",
            f"    python -m attestation verify-url {appliance.url} --pcrs {layout.pcrs_path} \\",
            f"        --manifest {layout.manifest_path} --test-root {layout.test_root_path}",
            "",
            "Press Ctrl-C to stop (the enclave, its namespace and every host process).",
        ]
    )
