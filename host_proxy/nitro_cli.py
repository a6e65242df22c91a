"""``python -m host_proxy.nitro_cli``: start the enclave on a Nitro parent with the manifest's resources.

``make enclave-run`` calls it. It reads ``[host]`` (``cpu_count``, ``memory_mib``, ``enclave_cid``),
checks the memory against nitro-cli's own rule, prints the exact ``nitro-cli run-enclave`` command, and
runs it where nitro-cli is installed. Elsewhere it says why it cannot and exits 3.

Memory (aws-nitro-enclaves-cli, src/enclave_proc/resource_manager.rs, ``ENCLAVE_MEMORY_EIF_SIZE_RATIO``):
nitro-cli refuses ``--memory`` below 4 × the EIF file size, rounded up to whole MiB ("Insufficient memory
requested", E26). The enclave also holds its whole root file system in RAM (the application ramdisk,
unpacked) plus the runtime, the relayer and the sidecar: ``WORKING_SET_MIB`` above the EIF size. The
default is the larger of the two, rounded up to ``MEMORY_STEP_MIB``; docs/nitro.md gives the numbers.
"""

from __future__ import annotations

import argparse
import math
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from manifest import CONFIGURATION_PORT, Manifest, ManifestError, load_manifest

MIB = 1024 * 1024
NITRO_CLI_EIF_RATIO = 4  # nitro-cli: memory >= 4 × EIF size
# Runtime + relayer (one process) and the sidecar: 190 MiB resident measured idle after provisioning
# (`make run`, 2026-11); the rest is headroom for request bodies, connection pools and embeddings.
WORKING_SET_MIB = 512
MEMORY_STEP_MIB = 256
DEFAULT_EIF = Path("build/image/enclave.eif")
EXIT_NO_NITRO_CLI = 3


@dataclass(frozen=True)
class EnclaveLaunch:
    eif: Path
    cpu_count: int
    memory_mib: int
    enclave_cid: int
    debug_mode: bool

    def argv(self) -> list[str]:
        argv = [
            "nitro-cli", "run-enclave", "--eif-path", str(self.eif), "--cpu-count", str(self.cpu_count),
            "--memory", str(self.memory_mib), "--enclave-cid", str(self.enclave_cid),
        ]  # fmt: skip
        return [*argv, "--debug-mode"] if self.debug_mode else argv


def minimum_memory_mib(eif_size: int) -> int:
    """The smallest ``--memory`` nitro-cli accepts for an EIF of ``eif_size`` bytes."""
    return math.ceil(eif_size / MIB) * NITRO_CLI_EIF_RATIO


def recommended_memory_mib(eif_size: int) -> int:
    needed = max(minimum_memory_mib(eif_size), math.ceil(eif_size / MIB) + WORKING_SET_MIB)
    return math.ceil(needed / MEMORY_STEP_MIB) * MEMORY_STEP_MIB


def plan_launch(deployment: Manifest, eif: Path, *, debug_mode: bool) -> EnclaveLaunch:
    """The launch ``deployment`` asks for; raises ValueError if nitro-cli would refuse the memory."""
    size = eif.stat().st_size
    memory = deployment.host.memory_mib or recommended_memory_mib(size)
    minimum = minimum_memory_mib(size)
    if memory < minimum:
        raise ValueError(
            f"host.memory_mib = {memory} is below what nitro-cli accepts for this {size / MIB:.1f} MiB EIF: "
            f"{minimum} MiB ({NITRO_CLI_EIF_RATIO} × the EIF size); set at least {minimum}, or 0 for {recommended_memory_mib(size)}"
        )
    return EnclaveLaunch(eif, deployment.host.cpu_count, memory, deployment.host.enclave_cid, debug_mode)


def explain(launch: EnclaveLaunch, manifest_path: Path) -> str:
    lines = [
        f"enclave: {launch.cpu_count} vCPUs, {launch.memory_mib} MiB, CID {launch.enclave_cid}, image {launch.eif}",
        "allocator (/etc/nitro_enclaves/allocator.yaml) must reserve at least: "
        f"cpu_count: {launch.cpu_count}, memory_mib: {launch.memory_mib}",
        f"host proxy: python -m host_proxy --manifest {manifest_path}   (serves the configuration on vsock port "
        f"{CONFIGURATION_PORT}; start it before or after the enclave, the enclave waits)",
    ]
    if launch.debug_mode:
        lines.append(
            "DEBUG MODE: the attestation documents carry all-zero PCRs; verifiers (and provisioning) refuse them. "
            "Use it only to read the console: nitro-cli console --enclave-name <name from describe-enclaves>"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m host_proxy.nitro_cli",
        description="Start the enclave on a Nitro parent with nitro-cli, sized by the manifest's [host] table "
        "(docs/nitro.md). Prints the exact command; runs it only where nitro-cli is installed.",
    )
    parser.add_argument("--manifest", type=Path, required=True, help="the appliance manifest (TOML)")
    parser.add_argument("--eif", type=Path, default=DEFAULT_EIF, help=f"the enclave image [{DEFAULT_EIF}]")
    parser.add_argument(
        "--debug-mode", action="store_true", help="console access; PCRs become all zero, so nothing attests"
    )
    parser.add_argument("--dry-run", action="store_true", help="print the plan and the command, run nothing")
    arguments = parser.parse_args(argv)
    try:
        deployment = load_manifest(arguments.manifest)
        launch = plan_launch(deployment, arguments.eif, debug_mode=arguments.debug_mode)
    except (ManifestError, ValueError) as error:
        print(f"enclave-run: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"enclave-run: cannot read the EIF {arguments.eif}: {error.strerror} (build it with `make image`)", file=sys.stderr)
        return 2
    print(explain(launch, arguments.manifest))
    print("command: " + " ".join(launch.argv()), flush=True)
    if arguments.dry_run:
        return 0
    executable = shutil.which("nitro-cli")
    if executable is None:
        print(
            "enclave-run: nitro-cli is not installed here, so this is not a Nitro Enclaves parent instance. On an "
            "EC2 instance launched with enclave support: install aws-nitro-enclaves-cli, start "
            "nitro-enclaves-allocator.service with the allocation above, then run this again (docs/nitro.md).",
            file=sys.stderr,
        )
        return EXIT_NO_NITRO_CLI
    return subprocess.run([executable, *launch.argv()[1:]], check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
