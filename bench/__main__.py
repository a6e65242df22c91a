"""Run every benchmark module's ``main()``, or only the named ones.

    python -m bench                       # all of bench/*.py
    python -m bench search_quality        # one
    python -m bench search_quality --scale 0.2   # arguments after the name go to that bench
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

import bench

_NOT_BENCHES = {"common", "retrieval_set"}


def available() -> list[str]:
    return sorted(
        module.name for module in pkgutil.iter_modules(bench.__path__)
        if not module.name.startswith("_") and module.name not in _NOT_BENCHES
    )


def run(name: str, arguments: list[str]) -> None:
    module = importlib.import_module(f"bench.{name}")
    saved = sys.argv
    sys.argv = [f"bench.{name}", *arguments]  # each bench parses its own options from sys.argv
    try:
        module.main()
    finally:
        sys.argv = saved


def main() -> int:
    names = available()
    requested = sys.argv[1:]
    if not requested:
        for name in names:
            run(name, [])
        return 0
    if requested[0] not in names:
        print(f"unknown bench {requested[0]!r}; available: {', '.join(names)}", file=sys.stderr)
        return 2
    run(requested[0], requested[1:])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
