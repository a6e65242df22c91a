import ast

from imagebuild import init_program
from imagebuild.rootfs import INIT_SOURCE


class TestInitProgram:
    def test_module_parameters_from_cmdline(self):
        cmdline = "console=ttyS0 virtio_mmio.device=4K@0xd0000000:5 virtio-mmio.device=4K@0xd0001000:6 nsm.x=1 vsock"
        assert init_program.module_parameters(cmdline, "virtio_mmio") == "device=4K@0xd0000000:5 device=4K@0xd0001000:6"
        assert init_program.module_parameters(cmdline, "vsock") == ""

    def test_fixed_runtime_environment(self):
        assert init_program.RUNTIME_ENVIRONMENT["PYTHONHASHSEED"] == "0"
        assert init_program.RUNTIME_ENVIRONMENT["PYTHONDONTWRITEBYTECODE"] == "1"

    def test_is_a_standalone_script(self):
        source = INIT_SOURCE.read_text()
        assert source.startswith("#!/usr/bin/python3.11 -I\n")
        imported = {alias.name.split(".")[0] for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Import) for alias in node.names}
        imported |= {node.module.split(".")[0] for node in ast.walk(ast.parse(source)) if isinstance(node, ast.ImportFrom) and node.module}
        assert "imagebuild" not in imported
