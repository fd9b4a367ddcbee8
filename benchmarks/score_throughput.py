"""LiRA scoring throughput on a synthetic memmapped scores.npy: one target, then all targets.

    python benchmarks/score_throughput.py                      # M=256, N=50,000, V=18 (0.9 GB on disk)
    python benchmarks/score_throughput.py --models 16 --examples 2000 --views 2

Prints one JSON object: sizes, wall and CPU seconds per phase (CPU time counts every thread; on a busy
machine the wall time depends on what else runs), peak RSS (resource.getrusage) and the machine it ran
on. The scores file is written row by row with plain writes, so generating it does not inflate the RSS.
The LiRA variants timed are the four of docs/auditing.md, computed together in one pass (two for all targets:
the fixed σ needs a first pass there).
"""

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from lira_jax.audit.lira import lira_scores

VARIANTS = ("lira_online", "lira_online_fixed_var", "lira_offline", "lira_offline_fixed_var")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def write_synthetic_run(folder: Path, num_models: int, num_examples: int, num_views: int, seed: int) -> None:
    """keep.npy (balanced: each example in half of the models) and scores.npy with a membership signal."""
    rng = np.random.default_rng(seed)
    keep = np.argsort(rng.random((num_models, num_examples)), axis=0) < num_models // 2
    np.save(folder / "keep.npy", keep)
    difficulty = rng.normal(0.0, 2.0, size=(num_examples, 1))
    shape = (num_models, num_examples, num_views)
    with open(folder / "scores.npy", "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, {"descr": "<f4", "fortran_order": False, "shape": shape})
        for model in range(num_models):
            row = difficulty + 0.5 * keep[model][:, None] + rng.normal(0.0, 1.0, size=shape[1:])
            handle.write(row.astype("<f4").tobytes())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=256)
    parser.add_argument("--examples", type=int, default=50_000)
    parser.add_argument("--views", type=int, default=18)
    parser.add_argument("--workers", type=int, default=None, help="threads (default: up to 4, one per core)")
    parser.add_argument("--skip-all", action="store_true", help="time one target only")
    parser.add_argument("--repeats", type=int, default=3, help="one-target runs; the fastest is reported")
    parser.add_argument("--dir", type=Path, default=None, help="where to write the synthetic run (a temp dir)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        folder = Path(folder)
        started = time.perf_counter()
        write_synthetic_run(folder, args.models, args.examples, args.views, args.seed)
        report = {
            "benchmark": "score_throughput",
            "num_models": args.models,
            "num_examples": args.examples,
            "num_views": args.views,
            "scores_bytes": (folder / "scores.npy").stat().st_size,
            "variants": list(VARIANTS),
            "generate_s": round(time.perf_counter() - started, 3),
            "peak_rss_mb_after_generate": round(peak_rss_mb(), 1),
        }
        keep = np.load(folder / "keep.npy")
        scores = np.load(folder / "scores.npy", mmap_mode="r")

        one_target = []  # wall, cpu: the first call also starts the threads and warms the caches
        for _ in range(args.repeats):
            started, cpu = time.perf_counter(), time.process_time()
            lira_scores(scores, keep, [args.models - 1], VARIANTS, workers=args.workers)
            one_target.append((time.perf_counter() - started, time.process_time() - cpu))
        report["one_target_s"] = round(min(wall for wall, _ in one_target), 3)
        report["one_target_cpu_s"] = round(min(cpu for _, cpu in one_target), 3)
        report["one_target_first_call_s"] = round(one_target[0][0], 3)
        report["peak_rss_mb_after_one_target"] = round(peak_rss_mb(), 1)

        if not args.skip_all:
            started, cpu = time.perf_counter(), time.process_time()
            lira_scores(scores, keep, None, VARIANTS, workers=args.workers)
            elapsed = time.perf_counter() - started
            report["all_targets_s"] = round(elapsed, 3)
            report["all_targets_cpu_s"] = round(time.process_time() - cpu, 3)
            report["all_targets_per_target_s"] = round(elapsed / args.models, 4)
            report["peak_rss_mb_after_all_targets"] = round(peak_rss_mb(), 1)

    report["device"] = {
        "kind": "cpu",
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "platform": platform.platform(),
    }
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
