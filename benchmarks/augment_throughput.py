"""Throughput of each training augmentation (and the 18 query views) on a CIFAR-shaped batch, vmapped over
a model axis as in the train step: images/s counted over all models, median of several timed calls after
one warm-up (compilation excluded; its time is reported separately).

    python benchmarks/augment_throughput.py [--models 32] [--batch 256] [--repeats 5] [--json PATH]

Augmentations are timed jitted and vmapped over the model axis on [models, batch, 32, 32, 3] float32 images
(each model its own key), exactly as the train step calls them; CIFAR-10 normalisation for autoaugment.

Prints one JSON object (and writes it to --json if given), naming the JAX device it ran on.
"""

import argparse
import functools
import json
import os
import platform
import statistics
import time

import jax
import jax.numpy as jnp

from lira_jax.shadow.augment import apply_views, augment_batch, parse_augmentations, parse_views

SPECS = ("flip", "crop:4", "cutout:16", "autoaugment", "mixup:1.0")
PIPELINES = {
    "flip+crop:4": ("flip", "crop:4"),
    "flip+crop:4+autoaugment+cutout:16": ("flip", "crop:4", "autoaugment", "cutout:16"),
}
CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def cpu_model() -> str:
    """The host CPU's model name where Linux tells it, else what `platform` knows."""
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def time_calls(function, arguments: tuple, repeats: int) -> tuple[float, float]:
    """(seconds for the first call, compilation included; median seconds of `repeats` later calls)."""
    start = time.perf_counter()
    jax.block_until_ready(function(*arguments))
    first = time.perf_counter() - start
    durations = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(function(*arguments))
        durations.append(time.perf_counter() - start)
    return first, statistics.median(durations)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=32)
    parser.add_argument("--batch", type=int, default=256, help="images per model")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--view-batch", type=int, default=256, help="images for the query-view timing")
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args()

    image_shape = (32, 32, 3)
    keys = jax.random.split(jax.random.key(0), args.models)
    images = jax.random.normal(jax.random.key(1), (args.models, args.batch, *image_shape), jnp.float32)
    labels = jax.random.randint(jax.random.key(2), (args.models, args.batch), 0, 10)
    targets = jax.nn.one_hot(labels, 10, dtype=jnp.float32)
    num_images = args.models * args.batch

    results = {}
    for name, specs in {**{spec: (spec,) for spec in SPECS}, **PIPELINES}.items():
        augmentations = parse_augmentations(specs, image_shape, mean=CIFAR_MEAN, std=CIFAR_STD)
        step = jax.jit(jax.vmap(functools.partial(augment_batch, augmentations=augmentations)))
        first, median = time_calls(step, (keys, images, targets), args.repeats)
        results[name] = {
            "images_per_s": round(num_images / median),
            "ms_per_call": round(1e3 * median, 2),
            "first_call_s": round(first, 2),
        }

    # Query views run once per batch at inference (all models then see the same views), so no model axis.
    views = parse_views(["mirror_shifts:4"], image_shape)
    view_images = images[0, : args.view_batch]
    first, median = time_calls(jax.jit(functools.partial(apply_views, views=views)), (view_images,), args.repeats)
    results["views:mirror_shifts:4"] = {
        "images_per_s": round(len(view_images) / median),
        "ms_per_call": round(1e3 * median, 2),
        "first_call_s": round(first, 2),
        "note": f"{len(view_images)} input images, 18 views each, no model axis",
    }

    device = jax.devices()[0]
    report = {
        "benchmark": "augment_throughput",
        "device": f"{device.platform}:{device.device_kind}",
        "device_count": jax.device_count(),
        "host_cpu": f"{cpu_model()}, {os.cpu_count()} logical cores",
        "jax": jax.__version__,
        "models": args.models,
        "batch_per_model": args.batch,
        "image_shape": list(image_shape),
        "repeats": args.repeats,
        "results": results,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as file:
            file.write(text + "\n")


if __name__ == "__main__":
    main()
