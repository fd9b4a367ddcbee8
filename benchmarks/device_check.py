"""One prepared run that answers the accelerator's open questions (issues 12 and 19), most important first.

    PYTHONPATH=. python benchmarks/device_check.py --out $OUT --fashion-mnist .data/fashion-mnist
    python benchmarks/device_check.py --smoke      # every row at tiny size on the CPU, no time caps

Writes one JSON line per measurement as soon as it has it (flushed, and into OUT/device_check.jsonl).
Each group of rows runs in its own process under its own time cap (none with --smoke), so an
out-of-memory, a compile failure or a hang becomes a row with "error" and the next group still runs;
a group that would start past --budget is skipped. --only names groups to run (a rerun). The groups:

- "engine:32": "device" (platform, kind, jax, the table's bf16 peak) and "engine loop 32", the GPU
  default for large models (loop, native convolutions, engine.LOOP_UNROLL) on ResNet-18 with the CIFAR
  stem, width 64, bfloat16, batch 256, configs/cifar10_resnet18.toml's recipe on synthetic 32x32 data:
  model_examples_per_s, compile_s, xla_bytes, flops_per_example (flops.py's count, the same on every
  backend: 3.33e9 expected), utilisation (rate x FLOPs / bf16 peak), seconds_for_256x25000x10 (the
  goal: <= 900 s).
- "fashion": the real-data headline, `python -m lira_jax.train --config configs/fashion_mnist_64.toml`
  (64 FastNets on all 70,000 pooled Fashion-MNIST images, then the attack): wall seconds, what was
  chosen, accuracies, LiRA's AUC and TPR at 0.1% FPR; metrics.json, roc.png, models.json and the log
  are copied into OUT as fashion_*.
- "fastnet": vmap against loop for the small Fashion-MNIST net (64 models, batch 128, 28x28, float32):
  whether the GPU default holds for models far smaller than ResNet-18.
- "e2e": a 16-model ResNet-18 run of 2 epochs with the attack, twice with one compilation cache: cold
  (empty cache) then warm (a second run of the same recipe): wall seconds against training seconds.
- "torch": the same ResNet-18 recipe in PyTorch (benchmarks/torch_loops.py: eager, channels_last, bf16
  autocast), 1, 2 and 4 processes training at once on the one GPU: total model-examples/s.
- "unroll": the loop with 1 and 2 models per loop iteration (engine.LOOP_UNROLL; 4 on GPUs by default).
- "vmap": vmap at 32 models, today's figure beside the loop's.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "cifar10_resnet18.toml"
FASHION_CONFIG = ROOT / "configs" / "fashion_mnist_64.toml"
# Dense bfloat16 peak FLOP/s from the vendors' data sheets (SXM parts; no sparsity).
BF16_PEAK = {"H200": 989e12, "H100 PCIe": 756e12, "H100": 989e12, "A100": 312e12}
GOAL_MODEL_EXAMPLES = 256 * 25_000 * 10
# (group, rows, time cap in seconds, extra environment), in priority order.
GROUPS = [
    ("engine:32", ["device", "engine loop 32"], 90, {}),
    ("fashion", ["fashion_mnist"], 330, {}),
    ("fastnet", ["engine vmap 64 fastnet", "engine loop 64 fastnet"], 70, {}),
    ("e2e", ["end_to_end cold", "end_to_end warm"], 150, {}),
    ("torch", ["torch 1", "torch 2", "torch 4"], 120, {}),
    ("unroll", ["engine loop 32 unroll 1", "engine loop 32 unroll 2"], 100, {}),
    ("vmap", ["engine vmap 32"], 70, {}),
]
SMOKE_MODELS = {"32": 4, "64": 4}  # the smoke run's stand-ins for each engine size


def bf16_peak(kind: str) -> float | None:
    """The table's bf16 peak for a device kind such as "NVIDIA H100 80GB HBM3", or None."""
    return next((peak for name, peak in BF16_PEAK.items() if all(part in kind for part in name.split())), None)


def settings(smoke: bool, net: str = "resnet18") -> dict:
    """Sizes of a row's network: ResNet-18 (or, net="fastnet", the Fashion-MNIST net) at the real sizes,
    or tiny ones that run on a CPU in seconds (the digits CNN: the smoke run checks the plumbing)."""
    if smoke:
        return {"arch": "cnn", "width": 2, "batch": 4, "side": 8, "channels": 3, "examples": 32,
                "precision": "float32", "e2e_examples": 48, "torch_steps": 2}  # fmt: skip
    if net == "fastnet":
        return {"arch": "fastnet", "width": 16, "batch": 128, "side": 28, "channels": 1, "examples": 4096,
                "precision": "float32"}  # fmt: skip
    return {"arch": "resnet18", "width": 64, "batch": 256, "side": 32, "channels": 3, "examples": 2048,
            "precision": "bfloat16", "e2e_examples": 10_000, "torch_steps": 150}  # fmt: skip


def synthetic_npz(path: Path, examples: int, side: int) -> None:
    """Random uint8 CIFAR-shaped images and 10 labels, as the npz: source reads them."""
    import numpy as np

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (examples, side, side, 3), dtype=np.uint8)
    np.savez(path, x=images, y=rng.integers(0, 10, examples).astype(np.int64))


def trainer_for(models: int, sizes: dict, model_batching: str):
    """A ChunkTrainer of configs/cifar10_resnet18.toml's recipe at these sizes, `models` models per step,
    on synthetic data, as train_run builds it."""
    import numpy as np

    from lira_jax import config as config_lib
    from lira_jax.shadow import engine
    from lira_jax.shadow.data import Dataset, make_keep
    from lira_jax.shadow.trainer import ChunkTrainer, make_plan

    overrides = [
        f"model.arch={sizes['arch']}", f"model.width={sizes['width']}", f"train.batch_size={sizes['batch']}",
        f"train.precision={sizes['precision']}", f"train.num_models={max(2, models + models % 2)}",
        f"train.model_batching={model_batching}", f"train.models_per_step={models}", "train.epochs=10",
    ] + (["train.augment=[]"] if sizes["arch"] == "cnn" else [])  # fmt: skip
    config = config_lib.with_overrides(config_lib.load(CONFIG), overrides)
    rng = np.random.default_rng(0)
    count, side = sizes["examples"], sizes["side"]
    images = rng.standard_normal((count, side, side, sizes["channels"]), dtype=np.float32)
    labels = rng.integers(0, 10, count).astype(np.int32)
    stats = (np.zeros(sizes["channels"], np.float32), np.ones(sizes["channels"], np.float32))
    dataset = Dataset(images, labels, 10, "synthetic", np.zeros(count, np.int8), *stats)
    keep = make_keep(config.train.num_models, count, seed=0)
    return ChunkTrainer(make_plan(config, dataset), dataset, keep, engine.model_mesh(models))


def engine_row(models: int, model_batching: str, sizes: dict, unroll: int | None) -> dict:
    """The engine's training step at `models` models per step, this model batching and the platform's
    default conv for it, `unroll` models per loop iteration (None: the default): timed by
    batching.measure after compiling."""
    import jax

    from lira_jax.shadow import batching, engine, recipe_models
    from lira_jax.shadow.trainer import compiled_bytes

    if unroll:
        engine.LOOP_UNROLL = {jax.default_backend(): unroll}
    trainer = trainer_for(models, sizes, model_batching)
    device = trainer.mesh.devices.flat[0]
    conv = recipe_models.conv_of(trainer.plan.model)
    compiled, compile_s, seconds = batching.measure(trainer, models, trainer.plan.model_batching, conv)
    rate = models * sizes["batch"] / seconds
    per_example = trainer.train_flops_per_example
    peak = bf16_peak(device.device_kind)
    stats = device.memory_stats() or {}
    return {
        "models_per_step": models, "model_batching": trainer.plan.model_batching, "conv": conv,
        "unroll": engine.loop_unroll(), "net": f"{sizes['arch']} width {sizes['width']}", "batch": sizes["batch"],
        "precision": sizes["precision"], "devices": trainer.mesh.size, "model_examples_per_s": round(rate),
        "compile_s": round(compile_s, 1), "s_per_step": round(seconds, 4), "xla_bytes": compiled_bytes(compiled),
        "device_peak_bytes": stats.get("peak_bytes_in_use"), "flops_per_example": per_example,
        "utilisation": round(rate * per_example / (peak * trainer.mesh.size), 4) if peak else None,
        "seconds_for_256x25000x10": round(GOAL_MODEL_EXAMPLES / rate),
    }  # fmt: skip


def train_command(out: Path, config: Path, sets: list[str]) -> list[str]:
    command = [sys.executable, "-m", "lira_jax.train", "--config", str(config), "--out", str(out)]
    return command + [part for value in sets for part in ("--set", value)]


def run_train(command: list[str], environment: dict, log: Path) -> tuple[float, str | None]:
    """Runs a train command with its stderr and stdout into `log`: (wall seconds, None or the error line)."""
    started = time.perf_counter()
    with log.open("w") as output:
        finished = subprocess.run(command, stdout=output, stderr=subprocess.STDOUT, cwd=ROOT, env=environment)
    seconds = time.perf_counter() - started
    lines = [line for line in log.read_text().splitlines() if line.strip() and not line.startswith(("  ", "--"))]
    return seconds, ((lines or ["?"])[-1][:300] if finished.returncode else None)


def run_summary(out: Path) -> dict:
    """What a finished run chose and measured, from its models.json and metrics.json."""
    records = json.loads((out / "models.json").read_text())["models"]
    first = records[0]
    attacks = json.loads((out / "metrics.json").read_text())["attacks"]
    lira = attacks["lira_online"]
    return {
        **{key: first.get(key) for key in ("chunk_size", "model_batching", "conv", "model_examples_per_s")},
        "train_seconds": round(sum({r["chunk_seconds"] for r in records}), 1),
        "test_accuracy_mean": round(sum(r["test_accuracy"] for r in records) / len(records), 4),
        "test_accuracy_min": round(min(r["test_accuracy"] for r in records), 4),
        "lira_online_auc": lira["auc"], "lira_online_tpr_at_0.001": lira["tpr_at_fpr"].get("0.001"),
    }  # fmt: skip


def fashion_row(smoke: bool, data: str | None, keep: Path | None, environment: dict) -> dict:
    sets = [f"data.source=idx:{data}"] if data else []
    if smoke:
        sets = ["data.source=digits", "data.limit=200", "train.num_models=4", "train.epochs=1", "model.width=4",
                "query.batch_size=64"]  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        out, log = Path(folder) / "run", Path(folder) / "log.txt"
        seconds, error = run_train(train_command(out, FASHION_CONFIG, sets), environment, log)
        if keep:
            for name in ("metrics.json", "roc.png", "models.json"):
                if (out / name).exists():
                    shutil.copy(out / name, keep / f"fashion_{name}")
            shutil.copy(log, keep / "fashion_log.txt")
        if error:
            return {"error": error, "seconds": round(seconds, 1)}
        return {"seconds": round(seconds, 1), **run_summary(out)}


def end_to_end_rows(sizes: dict, smoke: bool, environment: dict) -> list[dict]:
    """The 16-model run, cold then warm: one compilation cache, two run folders."""
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        data = Path(folder) / "cifar.npz"
        synthetic_npz(data, sizes["e2e_examples"], sizes["side"])
        sets = [f"data.source=npz:{data}", "train.num_models=16", "train.epochs=2", "train.precision=bfloat16",
                f"train.compilation_cache={Path(folder) / 'cache'}"]  # fmt: skip
        if smoke:
            sets += [f"model.arch={sizes['arch']}", f"model.width={sizes['width']}",
                     f"train.batch_size={sizes['batch']}", "train.augment=[]", "query.batch_size=64",
                     "query.views=['identity']"]  # fmt: skip
        for state in ("cold", "warm"):
            out, log = Path(folder) / state, Path(folder) / f"{state}.txt"
            seconds, error = run_train(train_command(out, CONFIG, sets), environment, log)
            rows.append({"error": error} if error else {"seconds": round(seconds, 1), **run_summary(out)})
    return rows


def torch_row(processes: int, sizes: dict, smoke: bool) -> dict:
    """`processes` PyTorch training processes at once on the one device (torch_loops.py --concurrent):
    each warms up, waits for the others, then times its steps; the total rate is over the common window."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return {"skipped": "torch is not importable"}
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, str(ROOT / "benchmarks" / "torch_loops.py"), "--concurrent", folder,
                   "--arch", sizes["arch"], "--width", str(sizes["width"]), "--side", str(sizes["side"]),
                   "--batch", str(sizes["batch"]), "--steps", str(sizes["torch_steps"])]  # fmt: skip
        workers = [subprocess.Popen([*command, "--worker", str(index)], stdout=subprocess.PIPE, text=True)
                   for index in range(processes)]  # fmt: skip
        while len(list(Path(folder).glob("ready-*"))) < processes:
            if any(worker.poll() is not None for worker in workers):
                return {"error": "a PyTorch worker exited before it was ready"}
            time.sleep(0.1)
        (Path(folder) / "go").touch()
        results = [json.loads(worker.communicate()[0].strip().splitlines()[-1]) for worker in workers]
    window = max(r["end"] for r in results) - min(r["start"] for r in results)
    examples = sum(r["steps"] * r["batch"] for r in results)
    return {"processes": processes, "model_examples_per_s": round(examples / window), "window_s": round(window, 2),
            "each": [r["model_examples_per_s"] for r in results], "device": results[0]["device"],
            "torch": results[0]["torch"]}  # fmt: skip


def run_group(group: str, smoke: bool, data: str | None, keep: Path | None) -> None:
    """Runs one group's rows in this process, printing each row's JSON line as soon as it is measured."""
    rows = next(rows for name, rows, _, _ in GROUPS if name == group)
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    results: list[tuple[str, dict]] = []
    started = time.perf_counter()
    try:
        if group == "e2e":
            results = list(zip(rows, end_to_end_rows(settings(smoke), smoke, environment), strict=True))
        for row in rows[len(results) :]:
            started = time.perf_counter()
            words = row.split()
            if row == "device":
                import jax

                device = jax.devices()[0]
                result = {"platform": device.platform, "kind": device.device_kind, "count": jax.device_count(),
                          "jax": jax.__version__, "bf16_peak": bf16_peak(device.device_kind)}  # fmt: skip
            elif words[0] == "engine":
                sizes = settings(smoke, "fastnet" if words[-1] == "fastnet" else "resnet18")
                models = SMOKE_MODELS[words[2]] if smoke else int(words[2])
                unroll = int(words[4]) if "unroll" in words else None
                result = engine_row(models, words[1], sizes, unroll)
            elif words[0] == "torch":
                result = torch_row(int(words[1]), settings(smoke), smoke)
            else:
                result = fashion_row(smoke, data, keep, environment)
            print(json.dumps({"row": row, **result, "row_s": round(time.perf_counter() - started, 1)}), flush=True)
    except Exception as error:  # one row's failure (out of memory, compile error) is that row's answer
        done = {name for name, _ in results}
        message = f"{type(error).__name__}: {(str(error).strip().splitlines() or [''])[0][:300]}"
        print(json.dumps({"row": next(r for r in rows if r not in done), "error": message}), flush=True)
    for row, result in results:
        print(json.dumps({"row": row, **result}), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=560.0, help="seconds; later groups are skipped")
    parser.add_argument("--smoke", action="store_true", help="every row at tiny size (CPU), no time caps")
    parser.add_argument("--only", help="comma-separated groups to run (default: all, in priority order)")
    parser.add_argument("--fashion-mnist", metavar="DIR", help="the Fashion-MNIST IDX files (default: the config's)")
    parser.add_argument("--out", type=Path, help="a folder for device_check.jsonl and the fashion run's files")
    parser.add_argument("--group", help=argparse.SUPPRESS)  # internal: run one group in this process
    args = parser.parse_args()
    if args.group:
        run_group(args.group, args.smoke, args.fashion_mnist, args.out)
        return 0
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    record = (args.out / "device_check.jsonl").open("w") if args.out else None

    def emit(line: str) -> None:
        print(line, flush=True)
        if record:
            record.write(line + "\n")
            record.flush()

    started = time.perf_counter()
    wanted = args.only.split(",") if args.only else [name for name, *_ in GROUPS]
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), environment.get("PYTHONPATH")]))
    # Groups compile some of the same programs: one compilation cache for all (the e2e rows use their own).
    with tempfile.TemporaryDirectory() as cache:
        environment.setdefault("LIRA_JAX_COMPILATION_CACHE", cache)
        environment.setdefault("JAX_COMPILATION_CACHE_DIR", cache)
        for group, rows, cap, extra in GROUPS:
            if group not in wanted:
                continue
            left = args.budget - (time.perf_counter() - started)
            if not args.smoke and left < 10:
                for row in rows:
                    emit(json.dumps({"row": row, "error": "skipped: the budget is spent"}))
                continue
            limit = None if args.smoke else min(cap, left)
            command = [sys.executable, __file__, "--group", group] + ["--smoke"] * args.smoke
            command += [f"--fashion-mnist={args.fashion_mnist}"] * bool(args.fashion_mnist)
            command += [f"--out={args.out}"] * bool(args.out)
            reported = run_child(command, limit, {**environment, **extra}, emit)
            for row in rows:
                if row not in reported:
                    why = f"no result within its {limit:.0f} s cap" if limit else "no result from its process"
                    emit(json.dumps({"row": row, "error": why}))
    emit(json.dumps({"row": "done", "seconds": round(time.perf_counter() - started, 1)}))
    return 0


def run_child(command: list[str], limit: float | None, environment: dict, emit) -> list[str]:
    """Runs a group in its own process, killed after `limit` seconds (None: never), passing its lines on as
    they come; returns the rows it reported."""
    reported = []
    with tempfile.TemporaryFile("w+") as errors:
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True, env=environment)
        watchdog = threading.Timer(limit, child.kill) if limit else None
        if watchdog:
            watchdog.start()
        try:
            for line in child.stdout:
                if line.startswith("{"):
                    emit(line.strip())
                    reported.append(json.loads(line).get("row"))
            child.wait()
        finally:
            if watchdog:
                watchdog.cancel()
        if child.returncode:
            errors.seek(0)
            tail = (errors.read().strip().splitlines() or [""])[-1][:300]
            emit(json.dumps({"row": f"{command[3]} process", "error": f"exit {child.returncode}: {tail}"}))
    return reported


if __name__ == "__main__":
    raise SystemExit(main())
