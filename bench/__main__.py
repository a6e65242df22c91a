"""Run every benchmark module's ``main()``, or only the named ones, then print one table of their comparisons.

    python -m bench                       # all of bench/*.py, then the summary table
    python -m bench search_quality        # one
    python -m bench search_quality --scale 0.2   # arguments after the name go to that bench
    python -m bench --summary             # the table from the reports already in build/bench/

Every bench writes build/bench/<name>.json with its ``comparisons`` (bench/common.py ``Comparison``: subject,
baseline, ratio, runs, spread); the summary gathers them into build/bench/summary.json.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
import time
from typing import Any

import bench
from bench.common import COMPARISON_COLUMNS, REPORT_DIRECTORY, Comparison, print_table

_NOT_BENCHES = {"common", "retrieval_set"}
SUMMARY = "summary"


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


def gather_comparisons() -> list[Comparison]:
    """The comparisons of every report in build/bench/ (the summary itself excluded), in bench order."""
    comparisons: list[Comparison] = []
    for path in sorted(REPORT_DIRECTORY.glob("*.json")):
        if path.stem == SUMMARY:
            continue
        document: dict[str, Any] = json.loads(path.read_text())
        comparisons += [Comparison(**row) for row in document.get("comparisons", [])]
    return comparisons


def summarize() -> int:
    comparisons = gather_comparisons()
    if not comparisons:
        print(f"no bench reports with comparisons under {REPORT_DIRECTORY}; run python -m bench first", file=sys.stderr)
        return 1
    print_table("every bench: subject against its baseline, interleaved in one run", COMPARISON_COLUMNS,
                [comparison.row() for comparison in comparisons])
    path = REPORT_DIRECTORY / f"{SUMMARY}.json"
    path.write_text(json.dumps({"comparisons": [comparison.__dict__ for comparison in comparisons]}, indent=2) + "\n")
    print(f"\nsummary: {path}")
    return 0


def main() -> int:
    names = available()
    requested = sys.argv[1:]
    if requested in (["--summary"], ["summary"]):
        return summarize()
    if requested and requested[0] in ("-h", "--help"):
        print(__doc__)
        print(f"benches: {', '.join(names)}")
        return 0
    if not requested:
        for name in names:
            started = time.perf_counter()
            print(f"\n=== bench {name}", flush=True)
            run(name, [])
            print(f"=== bench {name} took {time.perf_counter() - started:.0f} s", flush=True)
        return summarize()
    if requested[0] not in names:
        print(f"unknown bench {requested[0]!r}; available: {', '.join(names)}", file=sys.stderr)
        return 2
    run(requested[0], requested[1:])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
