import re

import pytest

from imagebuild.errors import KernelBuildError
from imagebuild.kernel_build import KERNEL_DIRECTORY
from imagebuild.kernel_config import lost_options, merge_fragment, parse_config
from imagebuild.lockfile import load_lock

FRAGMENT = (KERNEL_DIRECTORY / load_lock().kernel.config_fragment).read_text()


class TestParse:
    def test_options_and_comments(self):
        text = "# a comment\nCONFIG_A=y\n# CONFIG_B is not set\n\nCONFIG_C=\"text\"\nCONFIG_D=128\n"
        assert parse_config(text, strict=True) == {"CONFIG_A": "y", "CONFIG_B": "n", "CONFIG_C": '"text"', "CONFIG_D": "128"}

    def test_strict_rejects_garbage(self):
        with pytest.raises(KernelBuildError, match="line 2 is neither an option nor a comment"):
            parse_config("CONFIG_A=y\nCONFIG_B y\n", strict=True)

    def test_strict_rejects_a_repeated_option(self):
        with pytest.raises(KernelBuildError, match="sets CONFIG_A twice"):
            parse_config("CONFIG_A=y\n# CONFIG_A is not set\n", strict=True)


class TestMerge:
    def test_fragment_lines_replace_the_base_and_come_last(self):
        # Last is what makes a choice member of the fragment win over the base's member.
        base = "# header\nCONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=1\n"
        merged = merge_fragment(base, {"CONFIG_B": "y", "CONFIG_A": "n", "CONFIG_D": "y"})
        assert merged == "# header\nCONFIG_C=1\nCONFIG_B=y\n# CONFIG_A is not set\nCONFIG_D=y\n"

    def test_lost_options_are_named(self):
        lost = lost_options({"CONFIG_A": "y", "CONFIG_B": "n", "CONFIG_C": "y"}, {"CONFIG_A": "y", "CONFIG_B": "y"})
        assert [(item.name, item.requested, item.actual) for item in lost] == [("CONFIG_B", "n", "y"), ("CONFIG_C", "y", "n")]
        assert "CONFIG_C: requested y, got n" in str(lost[1])


class TestTheEnclaveFragment:
    """The requirements of issue #8 for the kernel, read from the committed fragment."""

    options = parse_config(FRAGMENT, strict=True)

    @pytest.mark.parametrize("name", [
        "VIRTIO_MMIO", "VIRTIO_MMIO_CMDLINE_DEVICES", "NSM", "HW_RANDOM", "VSOCKETS", "VIRTIO_VSOCKETS",
        "SERIAL_8250", "SERIAL_8250_CONSOLE", "DEVTMPFS", "DEVTMPFS_MOUNT", "BLK_DEV_INITRD",
        "VIRTIO_NET", "INET", "IP_PNP", "HW_RANDOM_VIRTIO",
    ])
    def test_built_in(self, name):
        assert self.options[f"CONFIG_{name}"] == "y"

    @pytest.mark.parametrize("name", ["MODULES", "RANDOMIZE_BASE", "PCI", "DEVMEM"])
    def test_off(self, name):
        assert self.options[f"CONFIG_{name}"] == "n"

    def test_every_option_group_has_a_reason(self):
        # Each block of options is preceded by a section header or a comment saying why.
        blocks = re.split(r"\n\s*\n", FRAGMENT)
        for block in blocks:
            if re.search(r"^(# )?CONFIG_", block, re.M):
                assert re.search(r"^# (?!CONFIG_)", block, re.M), block.splitlines()[0]
