"""Command line of the image builder; see `python -m imagebuild --help`."""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from imagebuild import eif, pcr
from imagebuild.build import REPOSITORY_ROOT, build_image, committed_tree
from imagebuild.errors import ImageBuildError
from imagebuild.verify import compare, format_table, load_published, rebuild

DESCRIPTION = """\
Build the MemWal enclave image (EIF) reproducibly and check its PCRs.

Every input is pinned by version and SHA-256 in imagebuild/inputs.lock.json: Debian bookworm's
linux-source-6.12 (compiled here with imagebuild/kernel.config and the pinned Debian toolchain),
Python 3.11 and its libraries from Debian bookworm, and the wheels of requirements.lock.
Downloads (first run only) and the built kernel are cached under build/cache/; downloads are
re-checked on every use, and the kernel is keyed by the hash of all its inputs. A cold kernel
build takes several minutes and prints its progress.
"""
EPILOG = """\
examples:
  python -m imagebuild build                      # -> build/image/enclave.eif, build/image/pcrs.json
  python -m imagebuild pcrs build/image/enclave.eif
  python -m imagebuild verify --pcrs published-pcrs.json   # exit 1 if any PCR differs
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m imagebuild", description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    build = commands.add_parser("build", help="build enclave.eif and pcrs.json from this checkout's HEAD (git archive)")
    build.add_argument("--out", type=Path, default=REPOSITORY_ROOT / "build" / "image", help="output directory (default: build/image)")
    build.add_argument("--cache", type=Path, default=REPOSITORY_ROOT / "build" / "cache", help="download cache (default: build/cache)")
    show = commands.add_parser("pcrs", help="parse an EIF (checking its CRC) and print its PCRs as JSON")
    show.add_argument("eif", type=Path, metavar="EIF")
    verify = commands.add_parser("verify", help="rebuild in a fresh temporary directory and compare with published PCRs")
    verify.add_argument("--pcrs", type=Path, required=True, help="published pcrs.json (nitro-cli format)")
    verify.add_argument("--cache", type=Path, default=REPOSITORY_ROOT / "build" / "cache", help="download cache (default: build/cache)")
    verify.add_argument("--worktree", action="store_true", help="rebuild from the working tree's files instead of `git archive HEAD`")
    return parser


def _build(arguments: argparse.Namespace) -> int:
    with committed_tree(REPOSITORY_ROOT) as checkout:
        result = build_image(checkout=checkout, out=arguments.out.resolve(), cache=arguments.cache.resolve())
    print(result.measurements.to_json(), end="")
    print(f"eif:     {result.eif_path}  ({result.eif_size / 1024**2:.1f} MiB, sha256 {result.eif_sha256})")
    print(f"pcrs:    {result.pcrs_path}")
    print(f"ramdisks: {', '.join(f'{size / 1024**2:.1f} MiB' for size in result.ramdisk_sizes)}")
    print(f"elapsed: {result.elapsed_seconds:.1f} s")
    return 0


def _pcrs(arguments: argparse.Namespace) -> int:
    raw = arguments.eif.read_bytes()
    print(pcr.measure(eif.parse(raw)).to_json(), end="")
    return 0


def _verify(arguments: argparse.Namespace) -> int:
    published = load_published(arguments.pcrs)
    rebuilt = rebuild(REPOSITORY_ROOT, cache=arguments.cache.resolve(), worktree=arguments.worktree)
    rows = compare(published, rebuilt)
    print(format_table(rows))
    if all(row.matches for row in rows):
        print("all PCRs match")
        return 0
    print("PCR MISMATCH: the published image was not built from this checkout")
    return 1


def main(argv: list[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)  # progress lines show up at once in CI logs too
    handler = {"build": _build, "pcrs": _pcrs, "verify": _verify}[arguments.command]
    try:
        return handler(arguments)
    except (ImageBuildError, OSError) as error:
        print(f"imagebuild: {type(error).__name__}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
