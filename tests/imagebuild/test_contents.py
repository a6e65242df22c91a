"""What goes into the image: the modules `python -m enclave` imports and the wheels they need, nothing else."""

import io
import subprocess
import zipfile
from pathlib import Path

import pytest

from imagebuild.contents import ENTRY_MODULES, FORBIDDEN, WheelInfo, derive_contents, select_wheels, wheel_info
from imagebuild.errors import RootfsError
from imagebuild.lockfile import load_lock
from imagebuild.rootfs import keep_wheel_path

REPOSITORY = Path(__file__).resolve().parents[2]


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture(scope="module")
def contents():
    return derive_contents(REPOSITORY)


class TestTheRealImage:
    def test_holds_the_runtime_the_relayer_and_the_sidecar(self, contents):
        needed = {"enclave.__main__", "enclave.boot", "enclave.platform", "manifest.model", "host_proxy.channels",
                  "relayer.serve", "relayer.app", "sidecar.__main__", "sidecar.app", "sealcrypto.decrypt",
                  "memwal_common.environment", "attestation.nsm"}  # fmt: skip
        assert needed <= set(contents.modules)
        assert contents.reached_from["sidecar.__main__"] == "relayer.serve"  # python -m sidecar
        assert "attestation/_roots/aws_nitro_root_g1.pem" in contents.files
        assert "relayer/prompts/ask.txt" in contents.files

    def test_holds_no_dev_or_test_code(self, contents):
        for module in contents.modules:
            for forbidden in FORBIDDEN:
                assert module != forbidden and not module.startswith(forbidden + "."), module
        assert not [path for path in contents.files if path.startswith(("tests/", "devtools/", "localnet/", "bench/"))]
        # client-side tools of attestation/ are not run inside the enclave either
        assert "attestation.client" not in contents.modules and "attestation._cli" not in contents.modules

    def test_every_file_is_tracked(self, contents):
        tracked = set(subprocess.run(["git", "-C", str(REPOSITORY), "ls-files"], capture_output=True, text=True, check=True).stdout.split())
        assert set(contents.files) <= tracked

    @pytest.mark.image  # needs the wheels `make image` fetches; runs in `make test-boot`
    def test_every_import_has_a_locked_wheel_and_numpy_only_if_imported(self, contents):
        lock = load_lock()
        cache = REPOSITORY / "build" / "cache" / "wheels"
        infos = [wheel_info(w.filename, (cache / w.filename).read_bytes()) for w in lock.wheels if (cache / w.filename).exists()]
        if len(infos) != len(lock.wheels):
            pytest.fail("build/cache/wheels is incomplete: run `make image` once to fetch the pinned wheels")
        selected = select_wheels(contents.external_imports, infos, unused=lock.unused_dependencies)
        assert ("numpy" in selected) == ("numpy" in contents.external_imports)
        assert selected["grpclib"] == "required by betterproto2"  # pysui asks for betterproto2[grpclib]


class TestWalk:
    def test_follows_imports_everywhere_but_type_checking(self, tmp_path):
        checkout = write(tmp_path, {
            "app/__init__.py": "",
            "app/__main__.py": "from .core import run\nimport importlib\nimportlib.import_module('app.plugin')\n",
            "app/core.py": "import json\nimport httpx\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from app import typing_only\n"
                           "def run():\n    from app.lazy import thing\n    import subprocess\n"
                           "    subprocess.run(['python', '-m', 'helper'])\n",
            "app/lazy.py": "thing = 1\n", "app/plugin.py": "", "app/typing_only.py": "", "app/unused.py": "",
            "helper/__init__.py": "", "helper/__main__.py": "from . import data\n", "helper/data.py": "",
        })  # fmt: skip
        contents = derive_contents(checkout, entries=("app.__main__",))
        assert contents.modules == ("app", "app.__main__", "app.core", "app.lazy", "app.plugin", "helper", "helper.__main__", "helper.data")
        assert contents.external_imports >= {"json", "httpx", "importlib", "subprocess", "typing"}
        assert "app/unused.py" not in contents.files and "app/typing_only.py" not in contents.files

    def test_a_forbidden_module_fails_the_build_and_names_the_chain(self, tmp_path):
        checkout = write(tmp_path, {
            "enclave/__init__.py": "", "enclave/__main__.py": "from enclave import boot\n",
            "enclave/boot.py": "from attestation.simulator import SimulatedNsm\n",
            "attestation/__init__.py": "", "attestation/simulator.py": "",
        })  # fmt: skip
        with pytest.raises(RootfsError, match=r"attestation.simulator \(the NSM simulator\); imported via "
                                              r"attestation.simulator <- enclave.boot <- enclave.__main__"):  # fmt: skip
            derive_contents(checkout, entries=ENTRY_MODULES)

    def test_a_missing_module_of_ours_fails_the_build(self, tmp_path):
        checkout = write(tmp_path, {"app/__init__.py": "import app.gone\n"})
        with pytest.raises(RootfsError, match="app import.* app.gone, which is not in the checkout"):
            derive_contents(checkout, entries=("app",))

    def test_package_data_comes_from_pyproject(self, tmp_path):
        checkout = write(tmp_path, {
            "pyproject.toml": '[tool.setuptools.package-data]\napp = ["data/*.txt"]\nother = ["*.txt"]\n',
            "app/__init__.py": "", "app/data/a.txt": "a", "app/data/b.bin": "b", "other/__init__.py": "", "other/x.txt": "",
        })  # fmt: skip
        assert derive_contents(checkout, entries=("app",)).files == ("app/__init__.py", "app/data/a.txt")


def wheel(name: str, files: dict[str, str], requires: list[str]) -> WheelInfo:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
        metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: 1\n" + "".join(f"Requires-Dist: {r}\n" for r in requires)
        archive.writestr(f"{name}-1.dist-info/METADATA", metadata)
    return wheel_info(f"{name}-1-py3-none-any.whl", buffer.getvalue())


class TestWheelSelection:
    @pytest.fixture
    def wheels(self):
        return [
            wheel("top", {"top/__init__.py": ""}, ["base[extra]>=1", "windows-only; sys_platform == 'win32'", "opt; extra == 'all'"]),
            wheel("base", {"base/__init__.py": "", "_base_speedups.so": ""}, ["ext-dep; extra == 'extra'"]),
            wheel("ext_dep", {"ext_dep.py": ""}, []),
            wheel("numpy", {"numpy/__init__.py": ""}, []),
            wheel("opt", {"opt/__init__.py": ""}, []),
        ]

    def test_imports_and_their_requirements_with_extras(self, wheels):
        selected = select_wheels({"top", "json"}, wheels)
        assert selected == {"top": "imported as top", "base": "required by top", "ext-dep": "required by base"}

    def test_an_unused_wheel_stays_out(self, wheels):
        assert "numpy" not in select_wheels({"top"}, wheels)
        assert select_wheels({"numpy"}, wheels) == {"numpy": "imported as numpy"}

    def test_an_import_nobody_provides_fails(self, wheels):
        with pytest.raises(RootfsError, match="imports 'scipy', which neither the standard library nor a locked wheel"):
            select_wheels({"scipy"}, wheels)

    def test_a_requirement_without_a_locked_wheel_fails(self, wheels):
        with pytest.raises(RootfsError, match="top requires base, which has no locked wheel"):
            select_wheels({"top"}, [wheels[0]])

    def test_top_level_names_come_from_the_members(self, wheels):
        assert wheels[1].top_level == {"base", "_base_speedups"}


class TestWheelTrimming:
    @pytest.mark.parametrize(
        "path",
        ["numpy/__init__.py", "numpy/_core/_multiarray_umath.cpython-311-x86_64-linux-gnu.so", "certifi/cacert.pem",
         "jsonschema_specifications/schemas/draft7/metaschema.json", "numpy/testing/__init__.py",
         "httpx-0.28.1.dist-info/METADATA", "httpx-0.28.1.dist-info/licenses/LICENSE.md", "tzdata/zoneinfo/UTC",
         "cryptography-50.0.2.dist-info/licenses/LICENSE.APACHE", "pysui-1.5.1.dist-info/entry_points.txt"],
    )  # fmt: skip
    def test_kept(self, path):
        assert keep_wheel_path(path)

    @pytest.mark.parametrize(
        "path",
        ["numpy/_core/tests/test_api.py", "jsonschema/benchmarks/issue232.py", "sniffio/_tests/test_sniffio.py",
         "numpy/__init__.pyi", "httpx/py.typed", "asyncpg/protocol/protocol.pyx", "asyncpg/pgproto/pgproto.pxd",
         "numpy/_core/include/numpy/ndarraytypes.h", "numpy/_core/lib/libnpymath.a", "openai/README.md",
         "httpx-0.28.1.dist-info/RECORD", "httpx-0.28.1.dist-info/WHEEL", "httpx-0.28.1.dist-info/INSTALLER",
         "pkg/__pycache__/mod.cpython-311.pyc"],
    )  # fmt: skip
    def test_dropped(self, path):
        assert not keep_wheel_path(path)
