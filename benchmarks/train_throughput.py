"""Training throughput of the CNN: the vmapped engine vs. loops over models (JAX and PyTorch).

    python benchmarks/train_throughput.py --models 1,8,32,128 --epochs 3 --torch --repeats 5
    # 28x28 images (issue 13): the first 5,000 Fashion-MNIST images, CNN width 16, 8 models, host stepping,
    # then the whole command against the whole PyTorch script, alternately:
    python benchmarks/train_throughput.py --fashion-mnist 5000 --width 16 --models 2,8 --goal-models 8 \
        --model-batching host --epochs 3 --torch --repeats 3 --whole 3
    # the issue-4 GPU goal (256 ResNet-18, CIFAR-shaped, 25,000 examples each, 10 epochs, in 15 minutes):
    python benchmarks/train_throughput.py --arch resnet18 --synthetic 50000 --precision bfloat16 \
        --models 8,32,128,256 --goal-models 256 --epochs 3 [--conv native|matmul] [--model-batching loop]

Prints one JSON object: the JAX device, the date, a measured matmul peak (batching.matmul_rate: a jitted
square matmul in the run's precision on one device), the data sheet's bf16 peak where known, and,
for the digits CNN (width 8, batch 64, SGD with Nesterov momentum on a warm-up + cosine schedule, no augmentation):

- "engine": engine.make_train_epoch at each chunk size, its model axis sharded over min(chunk, devices)
  devices as `python -m lira_jax.train` shards it (on CPU: one device per core, lira_jax/devices.py).
  The first epoch compiles and is reported apart; model-examples/s is measured over the later epochs,
  with block_until_ready at the end.
  Achieved FLOP/s = the model's FLOPs per training example (flops.py, the same count on every backend)
  x model-examples / measured seconds.
- "jax_loop": a jitted single-model step (same model, batch, optimizer) called model after model.
- "auto_models_per_step": the chunk `models_per_step = "auto"` picks for 32 models here (on CPU: the
  largest whose compiled step keeps each device's temporaries in a quarter of its share of the
  last-level caches), measured as an engine row too; 32 models train as chunks of that size, at that
  row's model-examples/s (plus one initialisation and inference per chunk).
- "torch_loop" (with --torch and torch importable): the same architecture in PyTorch, SGD with Nesterov
  momentum 0.9, trained model after model on 2 threads (the way existing tools train shadow models).
- "goal_repeats" (with --torch --repeats R > 1): the auto chunk and the PyTorch loop timed R more times,
  alternately, with each ratio and their median (one pair of figures moves by 20-40% on shared hardware).

With --synthetic N, random CIFAR-shaped data stand in for the data set, and
"seconds_for_256_models_x_25000_examples_x_10_epochs" extrapolates the goal from the auto chunk's rate.
With --fashion-mnist N, the first N pooled Fashion-MNIST images (Debian's IDX files, `apt-get install
dataset-fashion-mnist`) stand in for digits. With --whole R (Fashion-MNIST only), "whole" times R times,
alternately, `python -m lira_jax.train --no-attack --quiet` on --loop-models models (the benchmark's data,
CNN, batch, optimizer and epochs; identity and mirror views; its own "auto" choices) and the whole PyTorch
script (torch_loops.py run as a script: read the IDX files, train model after model, then every model's
logits on every example under both views), each a fresh process, start-up included.

Model-examples/s counts every example of every model's batches: models x steps x batch per epoch.
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import torch_loops
from device_check import bf16_peak

from lira_jax.config import CHOICES, Config, ModelConfig, TrainConfig
from lira_jax.shadow import batching, engine, flops, recipe_models
from lira_jax.shadow.augment import parse_views
from lira_jax.shadow.data import DEBIAN_FASHION_MNIST_DIR, Dataset, load_dataset, make_keep
from lira_jax.shadow.devices import use_every_cpu_core
from lira_jax.shadow.models import build_model
from lira_jax.shadow.trainer import ChunkTrainer, Plan

BATCH = 64
WIDTH = 8


def keep_matrix(num_models: int, num_examples: int) -> np.ndarray:
    """A balanced keep matrix for `num_models` (for one model: the first row of a two-model one)."""
    return make_keep(max(2, num_models + num_models % 2), num_examples, seed=0)[:num_models]


def identity_view(dataset: Dataset) -> tuple:
    """The query views of a Plan: the identity only."""
    return tuple(parse_views(["identity"], dataset.images.shape[1:]))


def chunk_trainer(model, model_config: ModelConfig, train: TrainConfig, dataset, num_models: int, mesh):
    """The trainer's own ChunkTrainer for `num_models` of these models on `mesh` (identity view only)."""
    config = Config(model=model_config, train=train)
    forward_flops = flops.forward_flops_per_example(model, dataset.images.shape[1:])
    plan = Plan(config, model, (), identity_view(dataset), 0, dataset.num_classes, forward_flops, train.model_batching)
    return ChunkTrainer(plan, dataset, keep_matrix(num_models, len(dataset.labels)), mesh)


def auto_chunk(model, model_config: ModelConfig, train: TrainConfig, dataset, num_models: int) -> int:
    """The chunk size `train.models_per_step = "auto"` picks for `num_models` of these models on this device."""
    trainer = chunk_trainer(model, model_config, train, dataset, num_models, engine.model_mesh())
    return trainer.chunk_size("auto", num_models)


def bench_engine(model, model_config, train: TrainConfig, dataset, num_models: int, epochs: int, peak: float) -> dict:
    """The engine as `python -m lira_jax.train` runs it: the model axis sharded over min(models, devices),
    the chunk set up by the trainer's own ChunkTrainer."""
    mesh = engine.model_mesh(num_models)
    chunk = chunk_trainer(model, model_config, train, dataset, num_models, mesh)
    steps, images, labels, train_epoch = chunk.steps, chunk.images, chunk.labels, chunk.train_epoch
    keys, hyperparameters, keep_rows = chunk.chunk_inputs(np.arange(num_models))
    states = chunk.init(keys)
    jax.block_until_ready(states)

    started = time.perf_counter()
    compiled = train_epoch.lower(states, keys, hyperparameters, jnp.int32(0), keep_rows, images, labels).compile()
    states, metrics = compiled(states, keys, hyperparameters, jnp.int32(0), keep_rows, images, labels)
    jax.block_until_ready((states, metrics))
    first_s = time.perf_counter() - started
    epochs_run = 1

    def run_epochs(count: int) -> float:
        """Trains `count` more epochs; returns the mean seconds per epoch."""
        nonlocal states, metrics, epochs_run
        started = time.perf_counter()
        for epoch in range(epochs_run, epochs_run + count):
            states, metrics = compiled(states, keys, hyperparameters, jnp.int32(epoch), keep_rows, images, labels)
        jax.block_until_ready((states, metrics))
        epochs_run += count
        return (time.perf_counter() - started) / count

    per_epoch = run_epochs(epochs - 1)
    examples = num_models * steps * BATCH
    flops = chunk.train_flops_per_example * examples
    row = {
        "models": num_models,
        "devices": mesh.size,
        "steps_per_epoch": steps,
        "first_epoch_s (compile + run)": round(first_s, 2),
        "timed_epochs": epochs - 1,
        "s_per_epoch": round(per_epoch, 4),
        "model_examples_per_s": round(examples / per_epoch),
        "flops_per_epoch": flops,
        "achieved_flops_per_s": flops / per_epoch,
        "fraction_of_matmul_peak": round(flops / per_epoch / peak, 4),
        "final_loss_mean": round(float(jnp.mean(metrics.loss)), 4),
    }
    return row, lambda count: examples / run_epochs(count)


def goal_repeats(engine_rate, torch_rate, repeats: int) -> dict:
    """The issue-4 goal, measured `repeats` times, engine and PyTorch loop alternately (the machine's speed
    drifts by 20-40% over minutes on shared hardware, so one pair of figures can mislead either way)."""
    engine_rates, torch_rates = [], []
    for _ in range(repeats):
        engine_rates.append(round(engine_rate()))
        torch_rates.append(round(torch_rate()))
    ratios = [round(engine / torch, 2) for engine, torch in zip(engine_rates, torch_rates, strict=True)]
    return {
        "engine_auto_model_examples_per_s": engine_rates,
        "torch_loop_model_examples_per_s": torch_rates,
        "ratios": ratios,
        "median_ratio": float(np.median(ratios)),
    }


def loop_optimizer(train: TrainConfig, steps: int) -> optax.GradientTransformation:
    """For one model: the engine's update as optax's own chain (weight decay, then SGD with Nesterov
    momentum on the warm-up + cosine schedule), the way a per-model training script would write it."""
    warmup = round(train.warmup_epochs * steps)
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, train.learning_rate, warmup, max(train.epochs * steps, warmup + 1), 0.0
    )
    return optax.chain(
        optax.add_decayed_weights(train.weight_decay),
        optax.sgd(schedule, momentum=train.momentum or None, nesterov=train.nesterov and train.momentum > 0),
    )


def bench_jax_loop(
    model, train: TrainConfig, dataset, num_models: int, epochs: int, peak: float, flops_per_example: float
) -> dict:
    """A jitted one-model step over a host-drawn batch, called model after model, step after step."""
    keep = keep_matrix(max(2, num_models), len(dataset.labels))[:num_models]
    steps = engine.steps_per_epoch(keep, BATCH)
    optimizer = loop_optimizer(train, steps)
    images, labels = jnp.asarray(dataset.images), jnp.asarray(dataset.labels, jnp.int32)
    num_classes = dataset.num_classes

    @jax.jit
    def init(index):  # the engine's initialisation (rbg keys: fast to compile), for one model
        states = engine.init_states(model, optimizer, engine.model_keys(train.seed, index[None]), images.shape[1:])
        return jax.tree.map(lambda leaf: leaf[0], tuple(states))

    def loss_fn(params, batch_stats, batch_images, batch_labels):
        logits, updates = model.apply(
            {"params": params, "batch_stats": batch_stats}, batch_images, train=True, mutable=["batch_stats"]
        )
        targets = jax.nn.one_hot(batch_labels, num_classes)
        return optax.softmax_cross_entropy(logits, targets).mean(), updates["batch_stats"]

    @jax.jit
    def step(params, batch_stats, opt_state, indices):
        (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            params, batch_stats, images[indices], labels[indices]
        )
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), batch_stats, opt_state, loss

    rng = np.random.default_rng(0)
    state = init(jnp.uint32(0))
    warm_indices = jnp.zeros(BATCH, jnp.int32)
    compiled = step.lower(*state, warm_indices).compile()
    started = time.perf_counter()
    jax.block_until_ready(compiled(*state, warm_indices))
    warmup_s = time.perf_counter() - started

    started = time.perf_counter()
    loss = None
    for m in range(num_models):
        params, batch_stats, opt_state = init(jnp.uint32(m))
        members = np.flatnonzero(keep[m])
        for _ in range(epochs):
            order = rng.permutation(members)
            order = np.resize(order, steps * BATCH)  # wrap around, as the engine does
            for s in range(steps):
                indices = jnp.asarray(order[s * BATCH : (s + 1) * BATCH], jnp.int32)
                params, batch_stats, opt_state, loss = compiled(params, batch_stats, opt_state, indices)
    jax.block_until_ready(loss)
    seconds = time.perf_counter() - started
    examples = num_models * epochs * steps * BATCH
    flops = flops_per_example * examples
    return {
        "models": num_models,
        "epochs": epochs,
        "steps_per_epoch": steps,
        "first_step_s": round(warmup_s, 4),
        "seconds": round(seconds, 2),
        "model_examples_per_s": round(examples / seconds),
        "flops_per_example": flops_per_example,
        "achieved_flops_per_s": flops / seconds,
        "fraction_of_matmul_peak": round(flops / seconds / peak, 4),
        "final_loss": round(float(loss), 4),
    }


def bench_torch_loop(train: TrainConfig, dataset, num_models: int, epochs: int, base: int) -> dict:
    """The same CNN (width `base`) in PyTorch, trained model after model (NCHW, 2 threads):
    torch_loops.train_models."""
    import torch

    torch.set_num_threads(2)
    keep = keep_matrix(max(2, num_models), len(dataset.labels))[:num_models]
    height, width, channels = dataset.images.shape[1:]
    return torch_loops.train_models(
        lambda: torch_loops.cnn(channels, height, width, base, dataset.num_classes),
        dataset.images,
        dataset.labels,
        keep,
        epochs=epochs,
        batch=BATCH,
        learning_rate=train.learning_rate,
        weight_decay=train.weight_decay,
        warmup_epochs=train.warmup_epochs,
    )


def synthetic_cifar(num_examples: int) -> Dataset:
    """Random CIFAR-shaped data (float32[N, 32, 32, 3], 10 classes) for throughput: no data set here."""
    rng = np.random.default_rng(0)
    images = rng.standard_normal((num_examples, 32, 32, 3), dtype=np.float32)
    labels = rng.integers(0, 10, num_examples).astype(np.int32)
    zeros, ones = np.zeros(3, np.float32), np.ones(3, np.float32)
    return Dataset(images, labels, 10, "synthetic-cifar", np.zeros(num_examples, np.int8), zeros, ones)


def torch_worker(args: argparse.Namespace) -> dict | str:
    """bench_torch_loop in a fresh process: XLA's CPU thread pool in this one would compete with torch's."""
    command = [
        sys.executable, __file__, "--torch-worker", f"--epochs={args.epochs}", f"--loop-models={args.loop_models}",
        f"--fashion-mnist={args.fashion_mnist}", f"--width={args.width or WIDTH}",
    ]  # fmt: skip
    worker = subprocess.run(command, capture_output=True, text=True)
    if worker.returncode:
        return f"failed: {worker.stderr.strip().splitlines()[-1:]}"
    return json.loads(worker.stdout)


def timed(command: list[str]) -> float:
    """Seconds `command` takes as a fresh process; raises with its last line of stderr if it fails."""
    started = time.perf_counter()
    finished = subprocess.run(command, capture_output=True, text=True)
    if finished.returncode:
        raise RuntimeError(f"{command[:4]} failed: {finished.stderr.strip().splitlines()[-1:]}")
    return time.perf_counter() - started


def whole_commands(args: argparse.Namespace, width: int, repeats: int) -> dict:
    """`python -m lira_jax.train --no-attack` against the whole PyTorch script, alternately, `repeats` times."""
    folder = Path(tempfile.mkdtemp(prefix="whole-"))
    config = folder / "fashion.toml"
    config.write_text(
        f'[data]\nsource = "idx:{DEBIAN_FASHION_MNIST_DIR}"\nlimit = {args.fashion_mnist}\n'
        f'[model]\narch = "cnn"\nwidth = {width}\n'
        f"[train]\nnum_models = {args.loop_models}\nepochs = {args.epochs}\nbatch_size = {BATCH}\n"
        "weight_decay = 5e-4\naugment = []\n"
        '[query]\nviews = ["identity", "mirror"]\n'
    )
    engine_command = [sys.executable, "-m", "lira_jax.train", "--config", str(config), "--no-attack", "--quiet"]
    torch_command = [
        sys.executable, str(Path(__file__).with_name("torch_loops.py")), "--idx", DEBIAN_FASHION_MNIST_DIR,
        f"--limit={args.fashion_mnist}", f"--width={width}", f"--models={args.loop_models}",
        f"--epochs={args.epochs}", "--views=2", f"--out={folder / 'torch_logits.npy'}",
    ]  # fmt: skip
    engine_seconds, torch_seconds = [], []
    for repeat in range(repeats):
        run = folder / f"run{repeat}"
        engine_seconds.append(round(timed([*engine_command, "--out", str(run)]), 1))
        torch_seconds.append(round(timed(torch_command), 1))
        shutil.rmtree(run)
    ratios = [round(torch / engine, 2) for engine, torch in zip(engine_seconds, torch_seconds, strict=True)]
    shutil.rmtree(folder)
    return {
        "models": args.loop_models,
        "engine_seconds": engine_seconds,
        "torch_script_seconds": torch_seconds,
        "speedups": ratios,
        "median_speedup": float(np.median(ratios)),
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="1,8,32,128", help="chunk sizes of the vmapped engine")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per measurement (the first compiles)")
    parser.add_argument("--loop-models", type=int, default=8, help="models trained by the per-model loops")
    parser.add_argument("--torch", action="store_true", help="also time a PyTorch per-model loop")
    parser.add_argument(
        "--repeats", type=int, default=1, help="with --torch: measure the goal ratio this many more times, alternately"
    )
    parser.add_argument("--arch", default="cnn", choices=["cnn", "resnet18"], help="model (default: digits CNN)")
    parser.add_argument("--width", type=int, help="model width (default: 8 for cnn, 64 for resnet18)")
    parser.add_argument("--conv", default="auto", choices=CHOICES["model.conv"], help="model.conv")
    parser.add_argument("--precision", default="float32", choices=CHOICES["train.precision"], help="compute dtype")
    batchings = [choice for choice in CHOICES["train.model_batching"] if choice != "auto"]
    parser.add_argument("--model-batching", default="vmap", choices=batchings, help="train.model_batching")
    parser.add_argument(
        "--synthetic", type=int, default=0, metavar="N", help="N random CIFAR-shaped examples instead of digits"
    )
    parser.add_argument(
        "--fashion-mnist", type=int, default=0, metavar="N", help="the first N Fashion-MNIST images instead of digits"
    )
    parser.add_argument(
        "--whole", type=int, default=0, metavar="R", help="with --fashion-mnist: time the whole commands R times"
    )
    parser.add_argument("--goal-models", type=int, default=32, help="models whose auto chunk is measured")
    parser.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    return parser


def add_comparisons(result: dict, auto_size: int, rates: dict, args: argparse.Namespace, has_torch_net: bool) -> None:
    """The goal's extrapolation, the PyTorch loop (in its own process) and the ratios, into `result`."""
    auto = next(row for row in result["engine"] if row["models"] == auto_size)
    if args.synthetic:  # the issue-4 GPU goal: 256 ResNet-18, 25,000 examples each, 10 epochs, in 15 minutes
        result["seconds_for_256_models_x_25000_examples_x_10_epochs"] = round(
            256 * 25_000 * 10 / auto["model_examples_per_s"]
        )
    if args.torch and not has_torch_net:
        result["torch_loop"] = "the PyTorch loop is written for the CNN on real data only"
    elif args.torch:
        result["torch_loop"] = torch_worker(args)
        if isinstance(result["torch_loop"], dict) and args.repeats > 1:
            torch_rate = lambda: torch_worker(args)["model_examples_per_s"]  # noqa: E731
            result["goal_repeats"] = goal_repeats(lambda: rates[auto_size](args.epochs), torch_rate, args.repeats)
    if isinstance(result.get("torch_loop"), dict):
        result["ratio_32_models_auto_chunks_to_torch_loop"] = round(
            auto["model_examples_per_s"] / result["torch_loop"]["model_examples_per_s"], 2
        )
    result["ratio_32_models_auto_chunks_to_jax_loop"] = round(
        auto["model_examples_per_s"] / result["jax_loop"]["model_examples_per_s"], 2
    )
    largest = max(result["engine"], key=lambda row: row["models"])
    if isinstance(result.get("torch_loop"), dict):
        result[f"ratio_engine_{largest['models']}_to_torch_loop"] = round(
            largest["model_examples_per_s"] / result["torch_loop"]["model_examples_per_s"], 2
        )


def main() -> int:
    parser = build_parser()
    args = parser.parse_args()
    use_every_cpu_core()  # as python -m lira_jax.train does
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (the first epoch compiles and is not timed)")
    chunks = [int(part) for part in args.models.split(",") if part]

    if args.whole and not args.fashion_mnist:
        parser.error("--whole needs --fashion-mnist")
    if args.synthetic:
        dataset = synthetic_cifar(args.synthetic)
    elif args.fashion_mnist:
        dataset = load_dataset(f"idx:{DEBIAN_FASHION_MNIST_DIR}", limit=args.fashion_mnist)
    else:
        dataset = load_dataset("digits")
    train = TrainConfig(
        epochs=args.epochs, batch_size=BATCH, augment=(), precision=args.precision, model_batching=args.model_batching
    )
    if args.torch_worker:
        try:
            import torch  # noqa: F401
        except ImportError:
            print(json.dumps("torch is not installed"))
        else:
            print(json.dumps(bench_torch_loop(train, dataset, args.loop_models, args.epochs, args.width or WIDTH)))
        return 0
    device = jax.devices()[0]
    width = args.width or {"cnn": WIDTH, "resnet18": 64}[args.arch]
    model_config = ModelConfig(arch=args.arch, width=width, conv=args.conv)
    shape, precision = dataset.images.shape[1:], jnp.dtype(args.precision)
    model = build_model(model_config, dataset.num_classes, shape, precision, "native")
    config = Config(model=model_config, train=train)
    _, conv = batching.default_choice(config, device.platform, shape, flops.forward_flops_per_example(model, shape))
    model_config = ModelConfig(arch=args.arch, width=width, conv=conv)  # host stepping: native on CPU
    model = recipe_models.with_conv(model, conv)
    peak = batching.matmul_rate(device, jnp.dtype(args.precision))
    auto_size = auto_chunk(model, model_config, train, dataset, args.goal_models)
    chunks = sorted({*chunks, auto_size})  # the chunk 32 models train in, measured too
    result = {
        "benchmark": "train_throughput",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "device": {"platform": device.platform, "kind": device.device_kind, "count": jax.device_count()},
        "jax": jax.__version__,
        "machine": {"cpu_count": os.cpu_count(), "processor": platform.processor() or platform.machine()},
        "setup": {"data": dataset.source, "examples": len(dataset.labels), "model": f"{args.arch} width {width}",
                  "conv": recipe_models.conv_of(model), "batch": BATCH, "augment": [],
                  "precision": args.precision, "model_batching": args.model_batching,
                  "optimizer": "SGD nesterov 0.9, warmup+cosine, wd 5e-3"},
        "matmul_peak_flops_per_s": peak,
        "bf16_peak_of_the_table": bf16_peak(device.device_kind),
        "engine": [],
        "auto_models_per_step": {f"for {args.goal_models} models": auto_size},
        "jax_loop": bench_jax_loop(
            model, train, dataset, args.loop_models, args.epochs, peak,
            chunk_trainer(model, model_config, train, dataset, 2, engine.model_mesh(2)).train_flops_per_example,
        ),
    }  # fmt: skip
    rates = {}
    for size in chunks:
        row, rates[size] = bench_engine(model, model_config, train, dataset, size, args.epochs, peak)
        result["engine"].append(row)
    add_comparisons(result, auto_size, rates, args, args.arch == "cnn" and not args.synthetic)
    if args.whole:
        result["whole"] = whole_commands(args, width, args.whole)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
