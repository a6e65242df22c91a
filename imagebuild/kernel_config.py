"""Kernel config fragments: parse one, merge it into a `.config`, and check that it survived.

A fragment uses `.config` syntax: `CONFIG_X=value` sets an option, `# CONFIG_X is not set` turns it off,
and any other `#` line is a comment. `make olddefconfig` silently drops a value whose dependencies are
missing; `lost_options` finds every such drop so the build can refuse instead of shipping a kernel
without, say, the NSM driver.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from imagebuild.errors import KernelBuildError

MAX_CONFIG_BYTES = 1024**2
OFF = "n"
_SET = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=(.*)$")
_UNSET = re.compile(r"^# (CONFIG_[A-Za-z0-9_]+) is not set$")


@dataclass(frozen=True)
class LostOption:
    name: str
    requested: str
    actual: str

    def __str__(self) -> str:
        return f"{self.name}: requested {self.requested}, got {self.actual} (a dependency is missing or the option does not exist)"


def parse_config(text: str, *, strict: bool) -> dict[str, str]:
    """Option -> value (`n` for "is not set"). strict: reject anything that is not an option or a comment."""
    if len(text) > MAX_CONFIG_BYTES:
        raise KernelBuildError(f"kernel config larger than {MAX_CONFIG_BYTES} bytes")
    options: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        set_match, unset_match = _SET.match(stripped), _UNSET.match(stripped)
        if set_match:
            name, value = set_match.group(1), set_match.group(2)
        elif unset_match:
            name, value = unset_match.group(1), OFF
        elif not stripped or stripped.startswith("#") or not strict:
            continue
        else:
            raise KernelBuildError(f"kernel config fragment line {number} is neither an option nor a comment: {stripped[:80]!r}")
        if strict and name in options:
            raise KernelBuildError(f"kernel config fragment sets {name} twice (line {number})")
        options[name] = value
    return options


def merge_fragment(base: str, fragment: dict[str, str]) -> str:
    """`base` (.config text) without the fragment's options, then the fragment's lines at the end.

    Appending is what scripts/kconfig/merge_config.sh does, and it matters for choices: when two members of
    a choice are `y`, Kconfig keeps the one read last, so the fragment's member must come after the base's."""
    kept = []
    for line in base.splitlines():
        match = _SET.match(line.strip()) or _UNSET.match(line.strip())
        if match is None or match.group(1) not in fragment:
            kept.append(line)
    kept.extend(config_line(name, value) for name, value in fragment.items())
    return "\n".join(kept) + "\n"


def config_line(name: str, value: str) -> str:
    return f"# {name} is not set" if value == OFF else f"{name}={value}"


def lost_options(fragment: dict[str, str], final: dict[str, str]) -> list[LostOption]:
    """Fragment options whose value differs in the final config (an absent option counts as off)."""
    return [
        LostOption(name, requested, final.get(name, OFF))
        for name, requested in fragment.items()
        if final.get(name, OFF) != requested
    ]
