"""Training throughput of an MLP on a table: the engine against PyTorch, model after model and torch.func vmap.

    python benchmarks/tabular_throughput.py                      # the small MLP: 100 features, 64-32, 100 classes
    python benchmarks/tabular_throughput.py --net purchase       # 600-1024-512-256-128-100 (Purchase-100's net)
    python benchmarks/tabular_throughput.py --model-batching vmap,loop,host --skip-torch

Prints one JSON object. The same data (random standard-normal features, random labels: only the arithmetic
is measured), the same MLP (tanh), the same models (a balanced keep matrix: each trains on its half of the
rows), epochs, batch size and optimizer (SGD with Nesterov momentum 0.9, weight decay, warm-up + cosine
schedule: the engine's) for each of
- "engine": the run's own ChunkTrainer (shadow/trainer.py): its chunk size (train.models_per_step, "auto" as
  the trainer picks it: on CPU the most models whose temporaries fit a share of the caches) and its
  compiled epoch on the mesh `python -m lira_jax.train` uses (one CPU device per core), per model batching
  asked for; one chunk is timed, and the run's chunks take their turns at that rate;
- "torch_loop": one nn.Sequential per model trained model after model (the way existing tools train
  shadow models), torch.optim.SGD with LambdaLR;
- "torch_func_vmap": the models stacked (torch.func.stack_module_state) and trained together by
  vmap(grad(functional_call)), the SGD update written over the stacked tensors (torch._foreach_*),
  the strongest PyTorch way to train many small models at once.
Training time only: each is warmed up (compiled, or a first epoch) untimed, then --epochs epochs are
timed; no initialisation, data transfer or querying is counted. Model-examples/s = models x steps x
batch per epoch x epochs / seconds. The issue's figures (2026-12-07) used Adam; this uses SGD throughout.
"""

import argparse
import datetime
import json
import math
import os
import platform
import sys
import time

import numpy as np

NETS = {"small": (100, (64, 32), 100), "purchase": (600, (1024, 512, 256, 128), 100)}  # features, hidden, classes
LEARNING_RATE, MOMENTUM, WEIGHT_DECAY, WARMUP_EPOCHS = 0.05, 0.9, 5e-4, 1.0


def problem(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(x float32[N, D] standardised, y int64[N], keep bool[M, N] balanced, classes)."""
    from lira_jax.shadow.data import make_keep

    features, _, classes = NETS[args.net]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.rows, features), dtype=np.float32)
    y = rng.integers(0, classes, args.rows)
    return x, y, make_keep(args.models, args.rows, seed=0), classes


def steps_per_epoch(keep: np.ndarray, batch: int) -> int:
    return max(1, math.ceil(int(keep.sum(axis=1).max()) / batch))


def bench_engine(args: argparse.Namespace, model_batching: str) -> dict:
    """The engine as the trainer runs it, all models in one chunk, timed over --epochs compiled epochs."""
    import jax
    import jax.numpy as jnp

    from lira_jax.config import Config, ModelConfig, TrainConfig
    from lira_jax.shadow import engine
    from lira_jax.shadow.data import Dataset
    from lira_jax.shadow.trainer import ChunkTrainer, make_plan

    x, y, keep, classes = problem(args)
    _, hidden, _ = NETS[args.net]
    dataset = Dataset(x, y.astype(np.int32), classes, "random table", np.zeros(len(y), np.int8), x.mean(0), x.std(0))
    train = TrainConfig(
        num_models=args.models, epochs=args.epochs + 1, batch_size=args.batch, learning_rate=LEARNING_RATE,
        momentum=MOMENTUM, weight_decay=WEIGHT_DECAY, warmup_epochs=WARMUP_EPOCHS, models_per_step=args.models_per_step,
        model_batching=model_batching, precision=args.precision,
    )  # fmt: skip
    plan = make_plan(Config(model=ModelConfig(arch="mlp", hidden=hidden), train=train), dataset)
    mesh = engine.model_mesh(args.models, args.devices)
    trainer = ChunkTrainer(plan, dataset, keep, mesh)
    size = trainer.chunk_size(train.models_per_step, args.models)  # as the trainer picks it; chunks run in turn
    keys, hyperparameters, keep_rows = trainer.chunk_inputs(np.arange(size))
    states = trainer.init(keys)
    started = time.perf_counter()
    compiled = trainer.compiled_epoch(size)
    data = (keep_rows, trainer.images, trainer.labels)
    states, metrics = jax.block_until_ready(compiled(states, keys, hyperparameters, jnp.int32(0), *data))
    first_s = time.perf_counter() - started
    started = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        states, metrics = compiled(states, keys, hyperparameters, jnp.int32(epoch), *data)
    jax.block_until_ready((states, metrics))
    seconds = time.perf_counter() - started
    examples = size * trainer.steps * args.batch * args.epochs  # every chunk of the run alike
    return {
        "model_batching": plan.model_batching if model_batching == "auto" else model_batching,
        "devices": mesh.size,
        "models_per_step": size,
        "compile_and_first_epoch_s": round(first_s, 2),
        "seconds": round(seconds, 3),
        "model_examples_per_s": round(examples / seconds),
        "train_flops_per_example": trainer.train_flops_per_example,
        "final_loss": round(float(jnp.mean(metrics.loss)), 4),
    }


def bench_jax_plain(args: argparse.Namespace) -> dict:
    """The floor of the engine's overhead: a plain vmap over the models of a lax.scan over the steps of the
    same MLP (flax), the same SGD (optax: decayed weights, Nesterov momentum, warm-up + cosine), on one
    device, without the engine's per-model keys, hyperparameters, metrics or sharding."""
    import jax
    import jax.numpy as jnp
    import optax

    from lira_jax.shadow.nets_tabular import MLP

    x, y, keep, classes = problem(args)
    _, hidden, _ = NETS[args.net]
    steps = steps_per_epoch(keep, args.batch)
    orders = jnp.asarray(
        torch_orders(keep, steps, args.batch, args.epochs + 1).reshape(args.epochs + 1, args.models, steps, args.batch)
    )
    model = MLP(classes, hidden)
    schedule = optax.warmup_cosine_decay_schedule(
        0, LEARNING_RATE, round(WARMUP_EPOCHS * steps), (args.epochs + 1) * steps
    )
    optimizer = optax.chain(optax.add_decayed_weights(WEIGHT_DECAY), optax.sgd(schedule, MOMENTUM, nesterov=True))
    x, y = jnp.asarray(x), jnp.asarray(y, jnp.int32)

    def init(key):
        params = model.init(key, x[:1], train=False)["params"]
        return params, optimizer.init(params)

    def epoch(state, order):  # one model: state, int32[steps, B]
        def step(state, indices):
            params, opt_state = state
            loss, grads = jax.value_and_grad(
                lambda p: optax.softmax_cross_entropy_with_integer_labels(
                    model.apply({"params": p}, x[indices], train=True), y[indices]
                ).mean()
            )(params)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss

        return jax.lax.scan(step, state, order)

    states = jax.vmap(init)(jax.random.split(jax.random.key(0), args.models))
    train_epoch = jax.jit(jax.vmap(epoch))
    states, losses = jax.block_until_ready(train_epoch(states, orders[0]))
    started = time.perf_counter()
    for index in range(1, args.epochs + 1):
        states, losses = train_epoch(states, orders[index])
    jax.block_until_ready(states)
    seconds = time.perf_counter() - started
    examples = args.models * steps * args.batch * args.epochs
    return {
        "seconds": round(seconds, 3),
        "model_examples_per_s": round(examples / seconds),
        "final_loss": float(losses[:, -1].mean()),
    }


def torch_net(features: int, hidden: tuple[int, ...], classes: int):
    import torch.nn as nn

    layers, width = [], features
    for size in hidden:
        layers += [nn.Linear(width, size), nn.Tanh()]
        width = size
    return nn.Sequential(*layers, nn.Linear(width, classes))


def torch_orders(keep: np.ndarray, steps: int, batch: int, epochs: int):
    """int64[epochs, M, steps * batch]: each model's members, shuffled per epoch, wrapped as the engine wraps."""
    rng = np.random.default_rng(0)
    return np.stack(
        [[np.resize(rng.permutation(np.flatnonzero(row)), steps * batch) for row in keep] for _ in range(epochs)]
    )


def torch_problem(args: argparse.Namespace) -> tuple:
    """problem() as torch tensors: (x float32[N, D], y int64[N], orders int64[epochs + 1, M, steps * B], steps)."""
    import torch

    x, y, keep, _ = problem(args)
    steps = steps_per_epoch(keep, args.batch)
    orders = torch.from_numpy(torch_orders(keep, steps, args.batch, args.epochs + 1))
    return torch.from_numpy(x), torch.from_numpy(y), orders, steps


def bench_torch_loop(args: argparse.Namespace) -> dict:
    import torch
    from torch_loops import warmup_cosine

    x, y, orders, steps = torch_problem(args)
    features, hidden, classes = NETS[args.net]
    total = (args.epochs + 1) * steps
    seconds = 0.0
    for model in range(args.models):
        torch.manual_seed(model)
        net = torch_net(features, hidden, classes)
        optimizer = torch.optim.SGD(
            net.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM, nesterov=True, weight_decay=WEIGHT_DECAY
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(round(WARMUP_EPOCHS * steps), total))
        for epoch in range(args.epochs + 1):
            started = time.perf_counter()
            for step in range(steps):
                indices = orders[epoch, model, step * args.batch : (step + 1) * args.batch]
                optimizer.zero_grad(set_to_none=True)
                loss = torch.nn.functional.cross_entropy(net(x[indices]), y[indices])
                loss.backward()
                optimizer.step()
                scheduler.step()
            seconds += (time.perf_counter() - started) if epoch > 0 else 0.0  # each model's first epoch: warm-up
    examples = args.models * steps * args.batch * args.epochs
    return {"seconds": round(seconds, 3), "model_examples_per_s": round(examples / seconds), "final_loss": loss.item()}


def bench_torch_func(args: argparse.Namespace) -> dict:
    import torch
    from torch.func import functional_call, grad_and_value, stack_module_state, vmap
    from torch_loops import warmup_cosine

    x, y, orders, steps = torch_problem(args)
    features, hidden, classes = NETS[args.net]
    nets = []
    for model in range(args.models):
        torch.manual_seed(model)
        nets.append(torch_net(features, hidden, classes))
    params, buffers = stack_module_state(nets)
    params = {name: value.detach() for name, value in params.items()}
    base = torch_net(features, hidden, classes).to("meta")

    def loss_of(one_params, one_buffers, batch_x, batch_y):
        logits = functional_call(base, (one_params, one_buffers), (batch_x,))
        return torch.nn.functional.cross_entropy(logits, batch_y)

    gradient = vmap(grad_and_value(loss_of))
    names = list(params)
    momenta = [torch.zeros_like(params[name]) for name in names]
    schedule = warmup_cosine(round(WARMUP_EPOCHS * steps), (args.epochs + 1) * steps)
    seconds, loss = 0.0, None
    for epoch in range(args.epochs + 1):
        started = time.perf_counter()
        for step in range(steps):
            indices = orders[epoch, :, step * args.batch : (step + 1) * args.batch]  # [M, B]
            grads, loss = gradient(params, buffers, x[indices], y[indices])
            tensors = [params[name] for name in names]
            direction = torch._foreach_add([grads[name] for name in names], tensors, alpha=WEIGHT_DECAY)
            torch._foreach_mul_(momenta, MOMENTUM)
            torch._foreach_add_(momenta, direction)
            torch._foreach_add_(direction, momenta, alpha=MOMENTUM)  # Nesterov: g + momentum * buffer
            torch._foreach_add_(tensors, direction, alpha=-LEARNING_RATE * schedule(epoch * steps + step))
        seconds += (time.perf_counter() - started) if epoch > 0 else 0.0  # the first epoch: warm-up
    examples = args.models * steps * args.batch * args.epochs
    mean_loss = float(loss.mean())
    return {"seconds": round(seconds, 3), "model_examples_per_s": round(examples / seconds), "final_loss": mean_loss}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--net", choices=sorted(NETS), default="small")
    parser.add_argument("--models", type=int, default=8)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs, after one untimed")
    parser.add_argument("--precision", default="float32")
    parser.add_argument("--model-batching", default="auto", help="comma-separated: auto, vmap, loop, host")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="PyTorch's threads")
    parser.add_argument(
        "--models-per-step",
        default="auto",
        type=lambda v: v if v == "auto" else int(v),
        help="the engine's chunk: auto (as the trainer) or N",
    )
    parser.add_argument("--devices", type=int, help="the engine's devices (default: all, one per CPU core)")
    parser.add_argument("--skip-torch", action="store_true")
    return parser


def main() -> int:
    args = build_parser().parse_args()
    from lira_jax.shadow.devices import use_every_cpu_core

    use_every_cpu_core()
    import jax
    import jax.numpy as jnp

    from lira_jax.shadow import batching

    features, hidden, classes = NETS[args.net]
    result = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.processor() or platform.platform()}",
        "load_average_before": os.getloadavg(),
        "jax": jax.__version__,
        "setup": {
            "net": f"{features}-{'-'.join(map(str, hidden))}-{classes} tanh",
            "models": args.models,
            "rows": args.rows,
            "batch": args.batch,
            "timed_epochs": args.epochs,
            "precision": args.precision,
            "optimizer": f"SGD Nesterov momentum {MOMENTUM}, weight decay {WEIGHT_DECAY}, lr {LEARNING_RATE},"
            f" warm-up {WARMUP_EPOCHS} epoch + cosine",
        },  # fmt: skip
        "engine": {name: bench_engine(args, name) for name in args.model_batching.split(",")},
        "jax_plain": bench_jax_plain(args),
    }
    flops_per_example = next(iter(result["engine"].values()))["train_flops_per_example"]
    peak = batching.matmul_rate(jax.devices()[0], jnp.float32) * len(jax.devices())
    result["matmul_peak_flops_per_s"] = {"one_512_matmul_per_device_x_devices": peak}
    if not args.skip_torch:
        import torch

        torch.set_num_threads(args.threads)
        result["torch"] = {"version": torch.__version__, "threads": torch.get_num_threads()}
        result["torch_loop"] = bench_torch_loop(args)
        result["torch_func_vmap"] = bench_torch_func(args)
        best = max(row["model_examples_per_s"] for row in result["engine"].values())
        result["engine_over_torch_loop"] = round(best / result["torch_loop"]["model_examples_per_s"], 2)
        result["engine_over_torch_func_vmap"] = round(best / result["torch_func_vmap"]["model_examples_per_s"], 2)
    for row in [
        *result["engine"].values(),
        *(result.get(name) for name in ("jax_plain", "torch_loop", "torch_func_vmap")),
    ]:
        if row:
            row["fraction_of_matmul_peak"] = round(row["model_examples_per_s"] * flops_per_example / peak, 3)
    result["load_average_after"] = os.getloadavg()
    json.dump(result, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
