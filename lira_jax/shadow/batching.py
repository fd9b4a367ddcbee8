"""`train.model_batching = "auto"` and `model.conv = "auto"`: how a device runs its models, measured.

Under vmap every convolution becomes a grouped one (feature_group_count = M), whose speed on a GPU's
backward pass is unknown in advance; lax.map over models (loop) may instead be bound by launches; the
im2col matmul form of a convolution sidesteps both at the price of memory traffic. So for the run's
chunk size each candidate (vmap | loop | host) x (native | matmul) is compiled, a few steps and one query
batch of it timed on the mesh, and the fastest per chunk (all its epochs' steps, then a query of every
example) kept. The cost is bounded three ways:
- skipped, keeping the platform's fastest measured way (`candidates`: loop with native convolutions on
  GPUs; on CPU host stepping with native ones for images of 16x16 and more, vmap with im2col matmuls for
  smaller), when the run is estimated under a minute: the model's FLOPs (flops.py, counted the same on
  every backend) over a generous share of a measured matmul rate, with nothing of the model compiled;
- measured once per (platform, device kind, devices, architecture, width, image shape, batch, chunk,
  precision, epochs, examples, views, query batch) and cached in $XDG_CACHE_HOME/lira_jax/batching.json
  (~/.cache by default);
- on CPU the native form is a candidate only with host stepping ("host", shadow/stepping.py): XLA's CPU
  backend runs it 9 to 54 times slower than the matmul form under vmap or inside a loop body, and took
  minutes to compile it there (benchmarks/RESULTS.md); outside them it beat the matmul form on 28x28
  images (27 against 42 ms per step of the CNN at width 8). Host stepping is not a candidate elsewhere:
  accelerators are measured by benchmarks/device_check.py.
None of this changes what a run computes (up to float rounding): both keys are outside its identity.
"""

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lira_jax.config import Config
from lira_jax.shadow import recipe_models
from lira_jax.writing import atomic_path

SKIP_BELOW_SECONDS = 60.0
TIMED_STEPS = 3
# Share of the measured matmul rate a training step is assumed to reach, for the estimate only. Generous
# (the digits CNN reached 14 to 22% on CPU): a short run errs toward the defaults, not toward measuring.
ASSUMED_EFFICIENCY = 0.5


@dataclass(frozen=True)
class Choice:
    """The chosen way: model_batching "vmap" | "loop", conv "native" | "matmul"; timings: seconds per step
    of each candidate measured ({} when none was), keyed "vmap+matmul" etc.; reason: for the printed line."""

    model_batching: str
    conv: str
    reason: str
    timings: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        return f"model batching {self.model_batching}, conv {self.conv}: {self.reason}"


# Every (model_batching, conv), fastest first, by what was measured on each platform, for when nothing
# is measured for the run itself (benchmarks/RESULTS.md):
# - GPU, one H200. ResNet-18 (1.1 GFLOP per forward pass) at batch 256 in bfloat16: loop + native 52k
#   model-examples/s (57k with LOOP_UNROLL) against vmap + native 41k: vmapped convolutions become
#   grouped ones, a weak cuDNN path at that size, with 4x the compile time and 4.5x the memory. FastNet
#   at width 16 (8 MFLOP) at batch 128 on 28x28 images, 64 models: vmap + native 411k against loop +
#   native 195k: a small model's kernels are too short to fill the GPU one model at a time. So models
#   of at least GPU_LOOP_FLOPS per forward pass loop, smaller ones vmap. The matmul forms are unmeasured
#   there and come after. Other accelerators (TPU) are unmeasured and take the GPU's order.
# - CPU, 28x28 images and larger: host + native 63.1 s per chunk, loop + matmul 67.1 s, vmap + matmul
#   74.9 s (16 CNNs of width 8, Fashion-MNIST). Smaller images (digits' 8x8): vmap + matmul, the defaults
#   of every measured digits run. XLA's CPU backend runs native convolutions fast only host-stepped.
ACCELERATOR_ORDER = {
    "large": (("loop", "native"), ("vmap", "native"), ("loop", "matmul"), ("vmap", "matmul")),
    "small": (("vmap", "native"), ("loop", "native"), ("vmap", "matmul"), ("loop", "matmul")),
}
GPU_LOOP_FLOPS = 1e8  # between FastNet's 8e6 (vmap measured fastest) and ResNet-18's 1.1e9 (loop)
CPU_ORDER = {
    "large": (("host", "native"), ("loop", "matmul"), ("vmap", "matmul")),
    "small": (("vmap", "matmul"), ("loop", "matmul"), ("host", "native")),
}
# Nets without convolutions (mlp, transformer, a user's dense net): nothing to compute either way. 8 MLPs,
# batch 128, 20,000 rows (benchmarks/tabular_throughput.py, 2026-12-07, load 1.5): 100-64-32-100 vmap 615k
# model-examples/s, host 596k, loop 501k; 600-1024-512-256-128-100 (load 7) vmap 16.3k, loop 6.3k, host 2.9k.
CPU_ORDER_NO_CONVOLUTIONS = (("vmap", "native"), ("loop", "native"), ("host", "native"))
CPU_LARGE_SIDE = 16  # images at least this wide count as "large" on CPU (measured: 8x8 small, 28x28 large)


def candidates(
    config: Config, platform: str, image_shape: tuple[int, ...], forward_flops: float, convolutions: str = "choice"
) -> list[tuple[str, str]]:
    """Every (model_batching, conv) that "auto" may pick here, fastest first by what was measured on the
    platform for images of `image_shape` and a model of `forward_flops` FLOPs per forward pass of one
    image (flops.forward_flops_per_example); the first is the default when nothing is measured. The
    config's fixed keys rule some out. On CPU host stepping goes with the native form, its reason to
    exist, and the native form only with host stepping, unless the config fixes both; on accelerators
    host stepping is taken only when the config names it (they are measured by benchmarks/device_check.py).
    convolutions: "choice" (a built-in conv net: native or im2col), "native" (a user's model: its own
    operations, convolutions among them) or "none" (no convolution: on CPU vmap first, as for matmuls)."""
    batching, conv = config.train.model_batching, config.model.conv if convolutions == "choice" else "native"
    if platform == "cpu" and convolutions == "none":
        order = CPU_ORDER_NO_CONVOLUTIONS
    elif platform == "cpu":
        order = CPU_ORDER["large" if min(image_shape[:2]) >= CPU_LARGE_SIDE else "small"]
    else:
        order = ACCELERATOR_ORDER["large" if forward_flops >= GPU_LOOP_FLOPS else "small"]
        order += (("host", "native"), ("host", "matmul")) if batching == "host" else ()
    fitting = [(b, c) for b, c in order if batching in ("auto", b) and conv in ("auto", c)]
    return fitting or [(batching, conv)]  # only where both are fixed: CPU's loop or vmap with native convs


def default_choice(
    config: Config, platform: str, image_shape: tuple[int, ...], forward_flops: float, convolutions: str = "choice"
) -> tuple[str, str]:
    """(model_batching, conv) without measuring: the first of `candidates`."""
    return candidates(config, platform, image_shape, forward_flops, convolutions)[0]


def matmul_rate(device: jax.Device, dtype: Any, repeats: int = 3) -> float:
    """FLOP/s of a jitted square matmul in `dtype` on `device` (512 on CPU, 4096 elsewhere): best of repeats."""
    size = 512 if device.platform == "cpu" else 4096
    a = jax.device_put(jnp.ones((size, size), dtype), device)
    matmul = jax.jit(jnp.matmul)
    matmul(a, a).block_until_ready()
    best = math.inf
    for _ in range(repeats):
        started = time.perf_counter()
        matmul(a, a).block_until_ready()
        best = min(best, time.perf_counter() - started)
    return 2 * size**3 / best


def cache_path() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lira_jax" / "batching.json"


def cache_key(
    config: Config, mesh: jax.sharding.Mesh, image_shape: tuple, size: int, num_examples: int, options: list
) -> str:
    """What a measured choice depends on: the device, the model and its inputs, the chunk, the candidates
    `options`, and the weights of training against querying in a chunk (epochs, examples, views, query
    batch)."""
    device = mesh.devices.flat[0]
    model, train, query = config.model, config.train, config.query
    parts = [
        device.platform, device.device_kind, mesh.size, model.arch, model.width, model.depth, model.widen,
        model.norm, "x".join(map(str, image_shape)), train.batch_size, size, train.precision, train.dp_sgd,
        config.train.model_batching, config.model.conv, jax.__version__,
        "-".join(map(str, model.hidden)), model.activation, model.embed_dim, model.layers, model.heads,
        "/".join(f"{batching}+{conv}" for batching, conv in options),
        train.epochs, num_examples, len(query.views), query.batch_size,
    ]  # fmt: skip
    return "|".join(map(str, parts))


def read_cache() -> dict:
    """The measured choices {key: entry}; a damaged cache (not JSON, not an object, nested too deeply) is
    empty, and the next measurement rewrites it whole."""
    try:
        entries = json.loads(cache_path().read_text())
    except (OSError, ValueError, RecursionError):
        return {}
    return entries if isinstance(entries, dict) else {}


def write_cache(key: str, choice: Choice) -> None:
    """Adds one entry; a cache that cannot be written (read-only home) is only a cost, never an error."""
    path = cache_path()
    entries = read_cache()
    entries[key] = {"model_batching": choice.model_batching, "conv": choice.conv, "timings": choice.timings}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as temporary:
            temporary.write_text(json.dumps(entries, indent=1))
    except OSError:
        pass


def measure(
    trainer: Any, size: int, model_batching: str, conv: str, steps: int = TIMED_STEPS
) -> tuple[Any, float, float]:
    """(compiled epoch of `steps` steps, compile seconds, seconds per step) for `size` models trained the
    trainer's way but with this batching and conv: the faster of two calls after an untimed one. Raises what XLA raises
    (out of memory, compile failure)."""
    model = recipe_models.with_conv(trainer.plan.model, conv)
    epoch = trainer.epoch_function(model, model_batching, steps)
    keys, hyperparameters, keep_rows = trainer.chunk_inputs(np.minimum(np.arange(size), len(trainer.keep) - 1))
    states = trainer.init(keys)
    data = (keep_rows, trainer.images, trainer.labels)
    started = time.perf_counter()
    compiled = epoch.lower(states, keys, hyperparameters, jnp.int32(0), *data).compile()
    compile_s = time.perf_counter() - started
    states, _ = jax.block_until_ready(compiled(states, keys, hyperparameters, jnp.int32(0), *data))
    best = math.inf
    for epoch in (1, 2):  # the faster of two calls: one call of a few short steps is at the mercy of noise
        started = time.perf_counter()
        states, _ = jax.block_until_ready(compiled(states, keys, hyperparameters, jnp.int32(epoch), *data))
        best = min(best, time.perf_counter() - started)
    return compiled, compile_s, best / steps


def measure_query(trainer: Any, size: int, model_batching: str, conv: str) -> float:
    """Seconds per query batch (query.batch_size examples under every view) for `size` freshly initialised
    models queried this way: the faster of two calls after an untimed one."""
    infer = trainer.infer_function(recipe_models.with_conv(trainer.plan.model, conv), model_batching)
    states = trainer.init(trainer.chunk_inputs(np.minimum(np.arange(size), len(trainer.keep) - 1))[0])
    positions = jnp.arange(query_batch(trainer), dtype=jnp.int32)
    jax.block_until_ready(infer(states, trainer.images, trainer.labels, positions))
    best = math.inf
    for _ in range(2):
        started = time.perf_counter()
        jax.block_until_ready(infer(states, trainer.images, trainer.labels, positions))
        best = min(best, time.perf_counter() - started)
    return best


def query_batch(trainer: Any) -> int:
    return min(trainer.plan.config.query.batch_size, trainer.keep.shape[1])


def time_candidate(trainer: Any, size: int, model_batching: str, conv: str) -> dict[str, Any]:
    """{"s_per_step", "s_per_query_batch", "compile_s", "s_per_chunk"} of `measure` and `measure_query`
    (a chunk: every epoch's steps, then a query of every example), or {"error"} if the candidate fails to
    compile or run."""
    try:
        _, compile_s, seconds = measure(trainer, size, model_batching, conv)
        query_seconds = measure_query(trainer, size, model_batching, conv)
    except Exception as error:  # an out-of-memory or a compile failure rules a candidate out, nothing more
        return {"error": f"{type(error).__name__}: {(str(error).splitlines() or [''])[0][:200]}"}
    queries = math.ceil(trainer.keep.shape[1] / query_batch(trainer))
    return {
        "s_per_step": round(seconds, 6),
        "s_per_query_batch": round(query_seconds, 6),
        "compile_s": round(compile_s, 2),
        "s_per_chunk": round(trainer.epochs * trainer.steps * seconds + queries * query_seconds, 3),
    }


def estimated_seconds(trainer: Any, size: int, num_todo: int) -> float:
    """The run's training time if every device reached ASSUMED_EFFICIENCY of its measured matmul rate on the
    model's FLOPs (flops.py's count, the same on every backend); nothing of the model is compiled."""
    mesh_devices = list(trainer.mesh.devices.flat)
    model_examples = trainer.plan.config.train.batch_size * trainer.steps * trainer.epochs * size
    flops = trainer.train_flops_per_example * model_examples * math.ceil(num_todo / size)
    rate = matmul_rate(mesh_devices[0], jnp.dtype(trainer.plan.config.train.precision)) * len(mesh_devices)
    return flops / (ASSUMED_EFFICIENCY * rate)


def choose(trainer: Any, size: int, num_todo: int) -> Choice:
    """The way `trainer` (built the default way) should run chunks of `size` models, with its reason."""
    config, mesh = trainer.plan.config, trainer.mesh
    platform = mesh.devices.flat[0].platform
    options = candidates(config, platform, trainer.image_shape, trainer.plan.forward_flops, trainer.plan.convolutions)
    batching, conv = options[0]
    if len(options) == 1:
        own = trainer.plan.convolutions == "native" and platform == "cpu"
        return Choice(
            batching, conv, "the one way for a model's own convolutions on CPU" if own else "fixed by the config"
        )
    key = cache_key(config, mesh, trainer.image_shape, size, trainer.keep.shape[1], options)
    cached = read_cache().get(key)
    if isinstance(cached, dict) and (cached.get("model_batching"), cached.get("conv")) in options:
        return Choice(
            cached["model_batching"], cached["conv"], f"measured before ({cache_path()})", cached.get("timings", {})
        )
    started = time.perf_counter()
    estimate = estimated_seconds(trainer, size, num_todo)
    if estimate < SKIP_BELOW_SECONDS:
        return Choice(batching, conv, f"the defaults (run estimated at {estimate:.0f} s, under a minute: not measured)")
    timings = {f"{b}+{c}": time_candidate(trainer, size, b, c) for b, c in options}
    measured = {name: timing["s_per_chunk"] for name, timing in timings.items() if "s_per_chunk" in timing}
    if measured:
        batching, conv = min(measured, key=measured.get).split("+")
    ranking = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in sorted(measured.items(), key=lambda x: x[1]))
    reason = (
        f"fastest per chunk of {size} models, training and query ({ranking or 'every candidate failed'}); choosing took"
        f" {time.perf_counter() - started:.1f} s, cached in {cache_path()}"
    )
    choice = Choice(batching, conv, reason, timings)
    write_cache(key, choice)
    return choice
