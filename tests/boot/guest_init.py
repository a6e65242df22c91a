#!/usr/bin/python3.11 -I
"""PID 1 of the overlay test boot (tests/boot), started with `rdinit=/testinit`. Never in the image.

It runs the production /init's own first steps (loaded from /init: mounts, loopback, random pool), then

    1. imports every module of the application packages under /opt/memwal/app and every top-level
       module of /opt/memwal/site-packages, with the image's own interpreter, and reports failures
    2. connects through the QEMU forward named in /etc/testboot.json to the host and exchanges one line
    3. restarts the machine (QEMU runs with -no-reboot, so it exits)

Every console line starts with "testinit:"; tests/boot reads them.
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

CONFIG_PATH = "/etc/testboot.json"
LINUX_REBOOT_CMD_RESTART = 0x01234567
CONNECT_TIMEOUT_SECONDS = 60.0
MAX_REPLY_BYTES = 4096


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


def exchange(port: int, token: str, report: dict[str, object], address: str) -> str:
    with socket.create_connection((address, port), timeout=CONNECT_TIMEOUT_SECONDS) as connection:
        connection.sendall(json.dumps({"token": token, **report}).encode() + b"\n")
        reply = b""
        while not reply.endswith(b"\n") and len(reply) < MAX_REPLY_BYTES:
            chunk = connection.recv(MAX_REPLY_BYTES)
            if not chunk:
                break
            reply += chunk
    return reply.decode(errors="replace").strip()


def main() -> None:
    say("started")
    init = production_init()
    init.mount_all(ctypes.CDLL(None, use_errno=True).mount)
    init.loopback_up()
    init.wait_for_random_pool()
    with open(CONFIG_PATH, encoding="utf-8") as handle:
        config = json.load(handle)
    sys.path[:0] = [init.APPLICATION_DIRECTORY, init.SITE_PACKAGES]
    os.environ.update(init.RUNTIME_ENVIRONMENT)
    names = application_modules(init.APPLICATION_DIRECTORY) + top_level_modules(init.SITE_PACKAGES)
    failures = import_all(names)
    for failure in failures:
        say(f"import failed: {failure}")
    say(f"imported {len(names) - len(failures)} of {len(names)} modules")
    report = {"imported": len(names) - len(failures), "failures": failures}
    reply = exchange(config["port"], config["token"], report, config["address"])
    say(f"host answered: {reply}")


if __name__ == "__main__":
    try:
        main()
    except BaseException:  # the test reads the console; a traceback there beats a silent panic
        say("failed:\n" + traceback.format_exc())
    finally:
        say("restarting")
        os.sync()
        ctypes.CDLL(None, use_errno=True).reboot(LINUX_REBOOT_CMD_RESTART)
