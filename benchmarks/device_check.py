"""One command that answers the accelerator's open questions in at most 8 minutes (issue 12).

    pip install --no-deps -e .          # beside the machine's own JAX
    timeout 540 python benchmarks/device_check.py --budget 480 | tee device_check.jsonl
    python benchmarks/device_check.py --smoke      # every row at tiny size on the CPU, under two minutes
    python benchmarks/device_check.py --smoke --budget 0   # no time limit at all (the tests: a loaded machine
                                                           # must not turn slow rows into "budget spent")

Writes one JSON line per measurement as soon as it has it (flushed), most important first; each group of
rows runs in its own process with the time left as its limit, so an out-of-memory, a compile failure or
a hang becomes a row with "error" and the next group still runs. Rows (ResNet-18 with the CIFAR stem,
width 64, bfloat16, batch 256, configs/cifar10_resnet18.toml's recipe on synthetic CIFAR-shaped data):

- "device": platform, kind, count, jax version, the table's bf16 peak (null where unknown).
- "engine": the engine at 32, then 128, then 8 models per step, vmap and loop (the platform's default
  conv), timed over a few steps after compiling: model_examples_per_s, compile_s, xla_bytes (XLA's memory
  analysis of the step: arguments + outputs + temporaries), device_peak_bytes (the process's peak so far),
  flops_per_example (XLA's cost analysis of one model's step / batch; ResNet-18 at 32x32 should be near
  3.33e9 forward + backward: flops_vs_3.33e9), utilisation (rate x FLOPs per example / bf16 peak) and
  seconds_for_256x25000x10 (256 models x 25,000 examples x 10 epochs at this rate).
- "torch_loop": the same network in PyTorch (benchmarks/torch_loops.py: channels_last, bf16 autocast),
  models trained one after another, when torch is importable.
- "auto": what train.model_batching = model.conv = "auto" picks at 32 models per step, with the timings
  of every candidate (vmap / loop x native / matmul).
- "end_to_end": `python -m lira_jax.train --config configs/cifar10_resnet18.toml` with 16 models, 2 epochs,
  bfloat16, on a synthetic npz, attack included: wall seconds, what the run chose, the attack's AUC.

Read it: compare "engine" vmap against loop and against "torch_loop" at the same models per step (the
goals: 256 x 25k x 10 in <= 900 s, about 30% utilisation, >= 1.5x the PyTorch loop); "auto" should have
picked the fastest; an "error" row says what failed (e.g. RESOURCE_EXHAUSTED at 128 models).
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "cifar10_resnet18.toml"
# Dense bfloat16 peak FLOP/s from the vendors' data sheets (SXM parts; no sparsity).
BF16_PEAK = {"H200": 989e12, "H100 PCIe": 756e12, "H100": 989e12, "A100": 312e12}
GOAL_MODEL_EXAMPLES = 256 * 25_000 * 10
RESNET18_FLOPS = 3.33e9  # forward + backward of one 32x32 image
# (group, [rows]) in priority order; an engine group is "engine:MODELS".
GROUPS = [
    ("device", ["device"]),
    ("engine:32", ["engine vmap 32", "engine loop 32"]),
    ("torch", ["torch_loop"]),
    ("engine:128", ["engine vmap 128", "engine loop 128"]),
    ("auto", ["auto"]),
    ("e2e", ["end_to_end"]),
    ("engine:8", ["engine vmap 8", "engine loop 8"]),
]
SMOKE_MODELS = {"8": 2, "32": 4, "128": 8}  # the smoke run's stand-ins for each engine size


def bf16_peak(kind: str) -> float | None:
    """The table's bf16 peak for a device kind such as "NVIDIA H100 80GB HBM3", or None."""
    return next((peak for name, peak in BF16_PEAK.items() if all(part in kind for part in name.split())), None)


def settings(smoke: bool) -> dict:
    """Sizes: the real check, or tiny ones that run on a CPU in seconds (the digits CNN: ResNet-18 takes
    20 to 30 s to compile there, and the smoke run checks the plumbing, not the numbers)."""
    if smoke:
        sizes = {"arch": "cnn", "width": 2, "batch": 4, "side": 8, "examples": 32, "e2e_examples": 48}
    else:
        sizes = {"arch": "resnet18", "width": 64, "batch": 256, "side": 32, "examples": 2048, "e2e_examples": 10_000}
    return {**sizes, "torch_models": 2}


def synthetic_npz(path: Path, examples: int, side: int) -> None:
    """Random uint8 CIFAR-shaped images and 10 labels, as the npz: source reads them."""
    import numpy as np

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (examples, side, side, 3), dtype=np.uint8)
    np.savez(path, x=images, y=rng.integers(0, 10, examples).astype(np.int64))


def recipe(models: int, sizes: dict, model_batching: str = "auto", per_step: int | None = None):
    """configs/cifar10_resnet18.toml in bfloat16 for `models` models, at these sizes."""
    from lira_jax import config as config_lib

    overrides = [
        f"model.arch={sizes['arch']}",
        f"model.width={sizes['width']}", f"train.batch_size={sizes['batch']}", "train.precision=bfloat16",
        f"train.num_models={max(2, models + models % 2)}", f"train.model_batching={model_batching}",
        f"train.models_per_step={per_step or max(2, models + models % 2)}", "train.epochs=10",
    ] + (["train.augment=[]"] if sizes["arch"] == "cnn" else [])  # fmt: skip
    return config_lib.with_overrides(config_lib.load(CONFIG), overrides)


def trainer_for(models: int, sizes: dict, model_batching: str = "auto", per_step: int | None = None):
    """A ChunkTrainer of the recipe on synthetic data, as train_run builds it."""
    import numpy as np

    from lira_jax.shadow import engine
    from lira_jax.shadow.data import Dataset, make_keep
    from lira_jax.shadow.trainer import ChunkTrainer, make_plan

    config = recipe(models, sizes, model_batching, per_step)
    rng = np.random.default_rng(0)
    count, side = sizes["examples"], sizes["side"]
    images = rng.standard_normal((count, side, side, 3), dtype=np.float32)
    labels = rng.integers(0, 10, count).astype(np.int32)
    stats = (np.zeros(3, np.float32), np.full(3, 64.0, np.float32))
    dataset = Dataset(images, labels, 10, "synthetic", np.zeros(count, np.int8), *stats)
    keep = make_keep(config.train.num_models, count, seed=0)
    return ChunkTrainer(make_plan(config, dataset), dataset, keep, engine.model_mesh(models))


def engine_row(models: int, model_batching: str, sizes: dict) -> dict:

    from lira_jax.shadow import batching
    from lira_jax.shadow.trainer import compiled_bytes

    trainer = trainer_for(models, sizes, model_batching)
    device = trainer.mesh.devices.flat[0]
    _, conv = batching.default_choice(trainer.plan.config, device.platform)
    compiled, compile_s, seconds = batching.measure(trainer, models, model_batching, conv)
    rate = models * sizes["batch"] / seconds
    # Cost analysis: one device's program, one step (the scan's body); a lax.map body (loop) counted once.
    models_counted = models // trainer.mesh.size if model_batching == "vmap" else 1
    per_example = batching.flops_of(compiled) / (models_counted * sizes["batch"])
    peak = bf16_peak(device.device_kind)
    stats = device.memory_stats() or {}
    return {
        "models_per_step": models, "model_batching": model_batching, "conv": conv, "devices": trainer.mesh.size,
        "model_examples_per_s": round(rate), "compile_s": round(compile_s, 1), "s_per_step": round(seconds, 4),
        "xla_bytes": compiled_bytes(compiled), "device_peak_bytes": stats.get("peak_bytes_in_use"),
        "flops_per_example": per_example, "flops_vs_3.33e9": round(per_example / RESNET18_FLOPS, 3),
        "utilisation": round(rate * per_example / (peak * trainer.mesh.size), 4) if peak else None,
        "seconds_for_256x25000x10": round(GOAL_MODEL_EXAMPLES / rate),
    }  # fmt: skip


def torch_row(sizes: dict) -> dict:
    try:
        import torch
    except ImportError:
        return {"skipped": "torch is not importable"}
    import numpy as np
    import torch_loops

    from lira_jax.shadow.data import make_keep

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.backends.cudnn.benchmark = True
    rng = np.random.default_rng(0)
    count = sizes["examples"]
    images = rng.standard_normal((count, sizes["side"], sizes["side"], 3), dtype=np.float32)
    labels = rng.integers(0, 10, count)
    keep = make_keep(2, count, seed=0)[: sizes["torch_models"]]
    side, width = sizes["side"], sizes["width"]
    network = torch_loops.resnet18 if sizes["arch"] == "resnet18" else torch_loops.cnn
    arguments = (10, width) if sizes["arch"] == "resnet18" else (3, side, side, width, 10)
    result = torch_loops.train_models(
        lambda: network(*arguments), images, labels, keep, epochs=3, batch=sizes["batch"],
        learning_rate=0.1, weight_decay=5e-4, device=device, bfloat16=device == "cuda",
    )  # fmt: skip
    kind = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    peak = bf16_peak(kind)
    rate = result["model_examples_per_s"]
    return {
        **result, "device": kind,
        "utilisation_at_3.33e9": round(rate * RESNET18_FLOPS / peak, 4) if peak else None,
        "seconds_for_256x25000x10": round(GOAL_MODEL_EXAMPLES / rate),
    }  # fmt: skip


def auto_row(sizes: dict, smoke: bool) -> dict:
    from lira_jax.shadow import batching

    models = SMOKE_MODELS["32"] if smoke else 32
    trainer = trainer_for(256, sizes, per_step=models)
    batching.SKIP_BELOW_SECONDS = 0.0  # measure whatever the estimate says: that is the question here
    with tempfile.TemporaryDirectory() as cache:
        os.environ["XDG_CACHE_HOME"] = cache
        choice = batching.choose(trainer, models, 256)
    return {"models_per_step": models, "model_batching": choice.model_batching, "conv": choice.conv,
            "timings": choice.timings, "line": choice.line()}  # fmt: skip


def end_to_end_row(sizes: dict, smoke: bool, limit: float) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        data, out = Path(folder) / "cifar.npz", Path(folder) / "run"
        synthetic_npz(data, sizes["e2e_examples"], sizes["side"])
        sets = [f"data.source=npz:{data}", "train.num_models=16", "train.epochs=2", "train.precision=bfloat16"]
        if smoke:
            sets += [
                f"model.arch={sizes['arch']}",
                f"model.width={sizes['width']}",
                f"train.batch_size={sizes['batch']}",
                "train.augment=[]",
                "query.batch_size=64",
                "query.views=['identity']",
            ]
        command = [sys.executable, "-m", "lira_jax.train", "--config", str(CONFIG), "--out", str(out), "--quiet"]
        started = time.perf_counter()
        finished = subprocess.run(
            [*command, *(part for value in sets for part in ("--set", value))],
            capture_output=True, text=True, timeout=limit or None, cwd=ROOT,
        )  # fmt: skip
        seconds = time.perf_counter() - started
        if finished.returncode:
            return {"error": (finished.stderr.strip().splitlines() or ["?"])[-1][:300], "seconds": round(seconds, 1)}
        record = json.loads((out / "models.json").read_text())["models"][0]
        metrics = json.loads((out / "metrics.json").read_text())["attacks"]["lira_online"]
        chosen = {key: record.get(key) for key in ("chunk_size", "model_batching", "conv", "train_seconds")}
        return {
            "seconds": round(seconds, 1),
            **chosen,
            "lira_online_auc": metrics["auc"],
        }


def run_group(group: str, smoke: bool, limit: float) -> None:
    """Runs one group's rows in this process, printing each row's JSON line as soon as it is measured."""
    sizes = settings(smoke)
    for row in dict(GROUPS)[group]:
        started = time.perf_counter()
        try:
            if row == "device":
                import jax

                device = jax.devices()[0]
                result = {"platform": device.platform, "kind": device.device_kind, "count": jax.device_count(),
                          "jax": jax.__version__, "bf16_peak": bf16_peak(device.device_kind)}  # fmt: skip
            elif row.startswith("engine"):
                _, model_batching, models = row.split()
                models = SMOKE_MODELS[models] if smoke else int(models)
                result = engine_row(models, model_batching, sizes)
            elif row == "torch_loop":
                result = torch_row(sizes)
            elif row == "auto":
                result = auto_row(sizes, smoke)
            else:
                result = end_to_end_row(sizes, smoke, limit)
        except Exception as error:  # one row's failure (out of memory, compile error) is that row's answer
            result = {"error": f"{type(error).__name__}: {(str(error).strip().splitlines() or [''])[0][:300]}"}
        print(json.dumps({"row": row, **result, "row_s": round(time.perf_counter() - started, 1)}), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--budget", type=float, default=480.0, help="total seconds, later rows skipped (0: no limit, no timeouts)"
    )
    parser.add_argument("--smoke", action="store_true", help="every row at tiny size (CPU), for the tests")
    parser.add_argument("--group", help=argparse.SUPPRESS)  # internal: run one group in this process
    parser.add_argument("--limit", type=float, default=600.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.group:
        run_group(args.group, args.smoke, args.limit)
        return 0
    started = time.perf_counter()
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), environment.get("PYTHONPATH")]))
    # Groups compile some of the same programs (auto's candidates): a persistent cache shared by them.
    with tempfile.TemporaryDirectory() as cache:
        environment.setdefault("JAX_COMPILATION_CACHE_DIR", cache)
        for group, rows in GROUPS:
            left = args.budget - (time.perf_counter() - started) if args.budget else math.inf
            reported = run_child(group, rows, args, left, environment) if left > 5 else []
            for row in rows:
                if row not in reported:
                    reason = (
                        "budget spent" if left <= 5 else "no result from its process (killed, crashed or timed out)"
                    )
                    print(json.dumps({"row": row, "error": reason}), flush=True)
    print(json.dumps({"row": "done", "seconds": round(time.perf_counter() - started, 1)}), flush=True)
    return 0


def run_child(group: str, rows: list[str], args: argparse.Namespace, left: float, environment: dict) -> list[str]:
    """Runs a group in its own process, killed after `left` seconds, passing its lines on as they come;
    returns the rows it reported."""
    limit = 0 if math.isinf(left) else left - 5  # 0: the group's own subprocesses get no timeout either
    command = [sys.executable, __file__, "--group", group, f"--limit={limit:.0f}"] + (["--smoke"] * args.smoke)
    reported = []
    with tempfile.TemporaryFile("w+") as errors:
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True, env=environment)
        watchdog = threading.Timer(left, child.kill)
        if not math.isinf(left):
            watchdog.start()
        try:
            for line in child.stdout:
                if line.startswith("{"):
                    print(line.strip(), flush=True)
                    reported.append(json.loads(line).get("row"))
            child.wait()
        finally:
            watchdog.cancel()
        if child.returncode and len(reported) < len(rows):
            errors.seek(0)
            tail = (errors.read().strip().splitlines() or [""])[-1][:300]
            print(json.dumps({"row": f"{group} process", "error": f"exit {child.returncode}: {tail}"}), flush=True)
    return reported


if __name__ == "__main__":
    raise SystemExit(main())
