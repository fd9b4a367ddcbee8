"""The attack at the LiRA paper's scale, outputs included: one target, then all targets, against plot.py's semantics.

    python benchmarks/score_throughput.py                      # M=256, N=50,000, V=18 (0.9 GB on disk)
    python benchmarks/score_throughput.py --models 16 --examples 2000 --views 2 --repeats 1
    python benchmarks/score_throughput.py --compare /path/to/older/checkout   # alternate with older code
    python benchmarks/score_throughput.py --attacks bavaria_t,bavaria_n --skip-reference   # other attacks

On a synthetic run folder (scores.npy with a membership signal, keep.npy balanced, labels.npy), times whole
commands in fresh processes, each with its imports, reading and every default output:

- `one_target`: `python -m lira_jax.attack RUN --targets last --attacks <the five LiRA variants, or --attacks>`, writing
  metrics.json, roc.png, examples.csv, metrics.csv and report.html;
- `reference`: the same scores in plain NumPy/SciPy as the LiRA reference code's plot.py computes them
  (tests/audit/plot_reference.py run as a script: load, score the last model, scikit-learn's ROC, one figure);
- `reference_vectorised`: the same, the sets gathered with whole-array NumPy instead of a list per example;
- `all_targets`: the attack command with `--targets all` (skipped with --skip-all);
- with --compare DIR, each of the attack commands also from the checkout DIR (its lira_jax), alternated.

Each case runs --repeats times, the cases alternated within a repeat, so that a shared machine's load
falls on all of them alike; every run records its wall and CPU seconds, peak RSS (os.wait4) and the 1-minute
load average before it. (A child's peak RSS starts at its parent's, on Linux: so the run folder is written
by a child process, and this one stays small until the commands are timed.) Prints one JSON object: the
runs, then per case the median wall and CPU seconds, the largest peak RSS, and the median over repeats of
the per-repeat speed-up of one_target over each reference. With --in-process, the LiRA scoring alone is then
timed in this process, as before (lira_scores, one target then all targets).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPOSITORY = Path(__file__).resolve().parents[1]
PLOT_REFERENCE = REPOSITORY / "tests" / "audit" / "plot_reference.py"
VARIANTS = ("lira_online", "lira_online_fixed_var", "lira_offline", "lira_offline_fixed_var", "lira_offline_two_sided")


def write_synthetic_run(folder: Path, num_models: int, num_examples: int, num_views: int, seed: int) -> None:
    """keep.npy (balanced: each example in half of the models), labels.npy and scores.npy with a membership
    signal. The scores file is written row by row with plain writes, so generating it does not inflate the RSS."""
    rng = np.random.default_rng(seed)
    keep = np.argsort(rng.random((num_models, num_examples)), axis=0) < num_models // 2
    np.save(folder / "keep.npy", keep)
    np.save(folder / "labels.npy", rng.integers(0, 10, num_examples).astype(np.int32))
    difficulty = rng.normal(0.0, 2.0, size=(num_examples, 1))
    shape = (num_models, num_examples, num_views)
    with open(folder / "scores.npy", "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, {"descr": "<f4", "fortran_order": False, "shape": shape})
        for model in range(num_models):
            row = difficulty + 0.5 * keep[model][:, None] + rng.normal(0.0, 1.0, size=shape[1:])
            handle.write(row.astype("<f4").tobytes())


def timed(command: list[str], code: Path) -> dict:
    """Runs `command` with `code` first on PYTHONPATH: {wall_s, cpu_s, peak_rss_mb, load_1min_before}."""
    load = os.getloadavg()[0]
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(code), os.environ.get("PYTHONPATH", "")])}
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=code, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    error = process.stderr.read().decode(errors="replace")
    process.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{error[-2000:]}")
    return {
        "wall_s": round(wall, 3),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # Linux reports KiB
        "load_1min_before": round(load, 2),
    }


def attack_command(run: Path, out: Path, targets: str, attacks: list[str]) -> list[str]:
    """The attack on `run` with every default output, written into `out` (the run folder stays as generated)."""
    out.mkdir(exist_ok=True)
    return [
        sys.executable,
        "-m",
        "lira_jax.attack",
        str(run),
        "--targets",
        targets,
        "--attacks",
        ",".join(attacks),
        "--json",
        str(out / "metrics.json"),
        "--plot",
        str(out / "roc.png"),
    ]


def in_process(run: Path, num_models: int, repeats: int, skip_all: bool) -> dict:
    """lira_scores alone in this process: one target (fastest of `repeats`), then all targets."""
    import resource

    from lira_jax.audit.attacks.lira.lira import lira_scores

    keep = np.load(run / "keep.npy")
    scores = np.load(run / "scores.npy", mmap_mode="r")
    report = {}
    one_target = []
    for _ in range(repeats):
        started, cpu = time.perf_counter(), time.process_time()
        lira_scores(scores, keep, [num_models - 1], VARIANTS)
        one_target.append((time.perf_counter() - started, time.process_time() - cpu))
    report["one_target_s"] = round(min(wall for wall, _ in one_target), 3)
    report["one_target_cpu_s"] = round(min(cpu for _, cpu in one_target), 3)
    if not skip_all:
        started, cpu = time.perf_counter(), time.process_time()
        lira_scores(scores, keep, None, VARIANTS)
        report["all_targets_s"] = round(time.perf_counter() - started, 3)
        report["all_targets_cpu_s"] = round(time.process_time() - cpu, 3)
    report["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return report


def summary(runs: list[dict]) -> dict:
    """Per case and code: median wall and CPU seconds and the largest peak RSS; the median of the per-repeat
    speed-ups of one_target (this code) over each reference."""
    cases: dict[str, list[dict]] = {}
    for run in runs:
        cases.setdefault(f"{run['case']} ({run['code']})", []).append(run)
    result = {
        name: {
            "median_wall_s": round(statistics.median(run["wall_s"] for run in group), 3),
            "median_cpu_s": round(statistics.median(run["cpu_s"] for run in group), 3),
            "max_peak_rss_mb": max(run["peak_rss_mb"] for run in group),
            "repeats": len(group),
        }
        for name, group in cases.items()
    }
    ours = {run["repeat"]: run["wall_s"] for run in runs if run["case"] == "one_target" and run["code"] == "this"}
    for reference in ("reference", "reference_vectorised"):
        times = {run["repeat"]: run["wall_s"] for run in runs if run["case"] == reference}
        ratios = [times[repeat] / ours[repeat] for repeat in ours if repeat in times]
        if ratios:
            result[f"speedup_over_{reference}"] = {
                "per_repeat": [round(ratio, 2) for ratio in ratios],
                "median": round(statistics.median(ratios), 2),
            }
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=256)
    parser.add_argument("--examples", type=int, default=50_000)
    parser.add_argument("--views", type=int, default=18)
    parser.add_argument("--repeats", type=int, default=3, help="alternated repeats of every case")
    parser.add_argument("--skip-all", action="store_true", help="one target only (no all_targets case)")
    parser.add_argument("--skip-reference", action="store_true", help="no plain plot.py run")
    parser.add_argument("--compare", type=Path, help="another checkout whose attack is timed alternately")
    parser.add_argument("--in-process", action="store_true", help="also time lira_scores alone, in this process")
    parser.add_argument("--dir", type=Path, default=None, help="where to write the synthetic run (a temp dir)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--attacks", default=",".join(VARIANTS), help="the attacks timed (default: the LiRA variants)")
    parser.add_argument("--write-run", type=Path, help=argparse.SUPPRESS)  # the child that writes the run folder
    args = parser.parse_args()
    if args.write_run:
        write_synthetic_run(args.write_run, args.models, args.examples, args.views, args.seed)
        return 0

    codes = {"this": REPOSITORY, **({"compare": args.compare.resolve()} if args.compare else {})}
    if args.dir is not None:
        Path(args.dir).mkdir(parents=True, exist_ok=True)  # a --dir that does not exist yet is made
    with tempfile.TemporaryDirectory(dir=args.dir) as folder:
        run = Path(folder) / "run"
        run.mkdir()
        started = time.perf_counter()
        sizes = ["--models", str(args.models), "--examples", str(args.examples), "--views", str(args.views)]
        writer = [sys.executable, __file__, *sizes, "--seed", str(args.seed), "--write-run", str(run)]
        subprocess.run(writer, check=True)
        report = {
            "benchmark": "score_throughput",
            "num_models": args.models,
            "num_examples": args.examples,
            "num_views": args.views,
            "scores_bytes": (run / "scores.npy").stat().st_size,
            "attacks": args.attacks.split(","),
            "generate_s": round(time.perf_counter() - started, 3),
        }
        runs = []
        for repeat in range(args.repeats):
            cases = [("one_target", "last"), *([] if args.skip_all else [("all_targets", "all")])]
            for case, targets in cases:
                for code, path in codes.items():
                    command = attack_command(run, Path(folder) / f"out-{code}", targets, args.attacks.split(","))
                    runs.append({"case": case, "code": code, "repeat": repeat, **timed(command, path)})
                if case == "one_target" and not args.skip_reference:
                    for reference, flags in (("reference", []), ("reference_vectorised", ["--vectorised"])):
                        command = [sys.executable, str(PLOT_REFERENCE), str(run), *flags]
                        timing = timed(command, REPOSITORY)
                        runs.append({"case": reference, "code": "plain", "repeat": repeat, **timing})
        report["runs"] = runs
        report["summary"] = summary(runs)
        if args.in_process:  # last: it grows this process, whose peak RSS its later children would start at
            report["in_process_scoring"] = in_process(run, args.models, args.repeats, args.skip_all)

    report["device"] = {
        "kind": "cpu",
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "platform": platform.platform(),
        "codes": {name: str(path) for name, path in codes.items()},
    }
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
