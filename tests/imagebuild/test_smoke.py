"""The build-time smoke test really runs the image's interpreter, isolated, and names what does not import."""

from pathlib import Path

import pytest

from imagebuild import rootfs
from imagebuild.cpio import CpioEntry
from imagebuild.debian import deb_entries
from imagebuild.errors import RootfsError
from imagebuild.lockfile import load_lock
from imagebuild.smoke import smoke_test
from imagebuild.sources import InputCache

REPOSITORY = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def interpreter() -> list[CpioEntry]:
    lock = load_lock()
    inputs = InputCache(REPOSITORY / "build" / "cache")
    return rootfs.debian_runtime([(deb.package, deb_entries(inputs.deb(lock, deb))) for deb in lock.runtime_debs])


def application(interpreter: list[CpioEntry], modules: dict[str, str]) -> list[CpioEntry]:
    sources = [CpioEntry.file(f"{rootfs.APPLICATION_PREFIX}/{name}", text.encode()) for name, text in modules.items()]
    return rootfs.application_entries(debian=interpreter, wheels=[], sources=sources)


def test_imports_with_the_image_interpreter_and_runs_entry_points(interpreter):
    modules = {
        "app/__init__.py": "",
        "app/ok.py": "import ssl, json, ctypes, sys\nassert sys.version_info[:3] == (3, 11, 2), sys.version\n",
        "app/__main__.py": "import argparse\nargparse.ArgumentParser(prog='app').parse_args()\n",
    }
    assert smoke_test(application(interpreter, modules), ["app", "app.ok", "app.__main__"], entry_points=["app.__main__"],
                      self_checks={}) == 2  # fmt: skip


def test_names_every_module_that_does_not_import(interpreter):
    modules = {
        "app/__init__.py": "",
        "app/good.py": "import json\n",
        "app/needs_numpy.py": "import numpy\n",  # on this machine, not in the image
        "app/reaches_out.py": "import socket\nsocket.create_connection(('pypi.org', 443), timeout=3)\n",
    }
    with pytest.raises(RootfsError, match="2 module") as raised:
        smoke_test(application(interpreter, modules), ["app", "app.good", "app.needs_numpy", "app.reaches_out"], entry_points=[],
                   self_checks={})  # fmt: skip
    message = str(raised.value)
    assert "app.needs_numpy: ModuleNotFoundError: No module named 'numpy'" in message
    assert "app.reaches_out: " in message and "app.good" not in message


def test_an_entry_point_without_help_fails(interpreter):
    modules = {"app/__init__.py": "", "app/__main__.py": "raise SystemExit(3)\n"}
    with pytest.raises(RootfsError, match="python -m app --help failed"):
        smoke_test(application(interpreter, modules), ["app"], entry_points=["app.__main__"], self_checks={})


def test_a_self_check_runs_offline_and_its_failure_fails_the_build(interpreter):
    offline = (
        "import socket, sys\n"
        "def main():\n"
        "    try:\n"
        "        socket.create_connection(('pypi.org', 443), timeout=3)\n"
        "    except OSError:\n"
        "        return 0 if sys.argv == ['app.model'] else 2\n"
        "    return 3\n"
        "if __name__ == '__main__':\n"
        "    sys.exit(main())\n"
    )
    broken = "import sys\nif __name__ == '__main__':\n    print('weights do not match', file=sys.stderr)\n    sys.exit(1)\n"
    entries = application(interpreter, {"app/__init__.py": "", "app/model.py": offline, "app/broken.py": broken})
    assert smoke_test(entries, ["app", "app.model"], entry_points=[], self_checks={"app.model": "no network"}) == 2
    with pytest.raises(RootfsError, match=r"python -m app.broken \(the model\) failed in the image: weights do not match"):
        smoke_test(entries, ["app", "app.broken"], entry_points=[], self_checks={"app.broken": "the model"})


def test_a_self_checked_module_missing_from_the_image_fails(interpreter):
    with pytest.raises(RootfsError, match="lacks the self-checked module.*relayer.local_embeddings"):
        smoke_test(application(interpreter, {"app/__init__.py": ""}), ["app"], entry_points=[])
