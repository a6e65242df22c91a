#!/usr/bin/python3.11 -I
"""PID 1 of the full QEMU test boot (tests/boot/overlay.py puts it at /testinit; `rdinit=/testinit`).

Never in the image. Only the standard library, and the production /init loaded from the image itself:

    1. the production /init's own steps (imagebuild/init_program.py ``prepare_machine``): mounts,
       loopback, nitro-cli's boot heartbeat (no vsock device under QEMU: logged and skipped), random pool
    2. imports every module of /opt/memwal/app and every top-level module of /opt/memwal/site-packages
       with the image's interpreter, and reports failures (the image is complete under its own kernel)
    3. reads the PCRs the simulator must report from the host (FORWARD_ADDRESS:MEASUREMENTS_PORT, a
       QEMU forward): the host measured the test EIF it booted, as the Nitro hypervisor measures the
       image it loads and hands the values to the NSM. They cannot be in the overlay, which they measure
    4. replaces itself, through the production /init's ``start_runtime``, with
       ``python3.11 -m devtools.simulated_enclave --transport tcp:FORWARD_ADDRESS …`` where production
       runs ``python3.11 -m enclave``: the same boot code with the NSM simulator and TCP channels
       instead of /dev/nsm and vsock

Lines of its own start with "testinit:"; tests/boot reads them. A failure before step 4 restarts the
machine (QEMU runs with -no-reboot, so it exits) after printing the traceback.
"""

from __future__ import annotations

import ctypes
import importlib
import importlib.machinery
import importlib.util
import json
import os
import pkgutil
import socket
import sys
import traceback
from types import ModuleType

FORWARD_ADDRESS = "10.0.2.100"  # where QEMU's guest forwards live (tests/boot/qemu.py)
MEASUREMENTS_PORT = 6999  # the host's measurements of the test EIF, JSON {"PCR0": hex, ...}
RUNTIME_MODULE = "devtools.simulated_enclave"
PCRS_PATH = "/tmp/testboot-pcrs.json"
DATA_DIRECTORY = "/tmp/memwal"  # as production (enclave/platform.py IMAGE_DATA_DIRECTORY)
HOSTS_FILE = "/etc/hosts"
CONNECT_TIMEOUT_SECONDS = 60.0
MAX_MEASUREMENTS_BYTES = 64 * 1024
MEASURED_PCRS = ("PCR0", "PCR1", "PCR2")
PCR_HEX_LENGTH = 96
LINUX_REBOOT_CMD_RESTART = 0x01234567
IMPORTED_MESSAGE = "testinit: imported"


def say(message: str) -> None:
    print(f"testinit: {message}", flush=True)


def production_init() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("enclave_init", "/init")
    spec = importlib.util.spec_from_loader("enclave_init", loader)
    if spec is None:
        raise RuntimeError("cannot load /init")
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def application_modules(directory: str) -> list[str]:
    names = []
    for package in sorted(os.listdir(directory)):
        if not os.path.isfile(os.path.join(directory, package, "__init__.py")):
            continue
        names.append(package)
        for module in pkgutil.walk_packages([os.path.join(directory, package)], prefix=f"{package}."):
            if module.name.rsplit(".", 1)[-1] != "__main__":  # __main__ would start the program
                names.append(module.name)
    return names


def top_level_modules(site_packages: str) -> list[str]:
    names = set()
    for entry in os.listdir(site_packages):
        path = os.path.join(site_packages, entry)
        if entry.endswith((".dist-info", ".data")) or entry.startswith((".", "__")):
            continue
        if os.path.isdir(path) and os.path.isfile(os.path.join(path, "__init__.py")):
            names.add(entry)
        elif entry.endswith(".py"):
            names.add(entry[:-3])
        elif entry.endswith(".so"):
            names.add(entry.split(".", 1)[0])
    return sorted(names)


def import_all(names: list[str]) -> list[str]:
    failures = []
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as error:
            failures.append(f"{name}: {type(error).__name__}: {error}")
    return failures


def parse_measurements(raw: bytes) -> dict[str, str]:
    """The host's JSON: exactly PCR0, PCR1 and PCR2 as 96 lowercase hex digits each."""
    if len(raw) > MAX_MEASUREMENTS_BYTES:
        raise ValueError(f"measurements larger than {MAX_MEASUREMENTS_BYTES} bytes")
    document = json.loads(raw)
    if not isinstance(document, dict) or sorted(document) != list(MEASURED_PCRS):
        raise ValueError(f"measurements must hold exactly {', '.join(MEASURED_PCRS)}")
    for name, value in document.items():
        if not isinstance(value, str) or len(value) != PCR_HEX_LENGTH or value.strip("0123456789abcdef"):
            raise ValueError(f"{name} is not {PCR_HEX_LENGTH} lowercase hex digits")
    return document


def fetch_measurements(address: str = FORWARD_ADDRESS, port: int = MEASUREMENTS_PORT) -> dict[str, str]:
    with socket.create_connection((address, port), timeout=CONNECT_TIMEOUT_SECONDS) as connection:
        raw = b""
        while len(raw) <= MAX_MEASUREMENTS_BYTES:
            chunk = connection.recv(MAX_MEASUREMENTS_BYTES)
            if not chunk:
                break
            raw += chunk
    return parse_measurements(raw)


def runtime_arguments(interpreter: str) -> list[str]:
    return [
        interpreter, "-m", RUNTIME_MODULE, "--transport", f"tcp:{FORWARD_ADDRESS}", "--pcrs", PCRS_PATH,
        "--test-root-out", "-", "--data-dir", DATA_DIRECTORY, "--hosts-file", HOSTS_FILE,
    ]  # fmt: skip


def main() -> None:
    say("started")
    init = production_init()
    init.prepare_machine()
    sys.path[:0] = [init.APPLICATION_DIRECTORY, init.SITE_PACKAGES]
    os.environ.update(init.RUNTIME_ENVIRONMENT)
    names = application_modules(init.APPLICATION_DIRECTORY) + top_level_modules(init.SITE_PACKAGES)
    failures = import_all(names)
    for failure in failures:
        say(f"import failed: {failure}")
    say(f"imported {len(names) - len(failures)} of {len(names)} modules")
    measurements = fetch_measurements()
    with open(PCRS_PATH, "w", encoding="ascii") as handle:
        json.dump(measurements, handle)
    say(f"the simulator reports the host's measurements of this image: PCR0 {measurements['PCR0'][:16]}…")
    init.start_runtime(runtime_arguments(init.INTERPRETER))


if __name__ == "__main__":
    try:
        main()
    except BaseException:  # the test reads the console; a traceback there beats a silent panic
        say("failed:\n" + traceback.format_exc())
        say("restarting")
        os.sync()
        ctypes.CDLL(None, use_errno=True).reboot(LINUX_REBOOT_CMD_RESTART)
