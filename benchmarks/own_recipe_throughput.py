"""Training throughput of a user's own model against the built-in net it re-declares (issue 26 §7).

    PYTHONPATH=.:benchmarks python benchmarks/own_recipe_throughput.py [--models 32] [--epochs 4] [--repeats 3]

Each row trains the digits CNN (width 8, batch 64, default SGD, all 1,797 digits) the way
`python -m lira_jax.train` would, with the run's own choices (trainer.make_plan: model batching and conv
for the platform), one chunk of --models models: "builtin" (model.arch = "cnn"), "linen" and "nnx" (the
same net declared in the user's own module, benchmarks/user_cnn.py) and "linen_flax_conv" (the same net
with flax's nn.Conv, as a user would usually write it). The first epoch compiles and is not timed; then
--epochs epochs are timed, the rows alternately --repeats times (a shared machine drifts over minutes).
Prints one JSON object: each row's model-examples/s per repeat and median, each user row's median ratio
to the built-in's (of the medians, and of each repeat's pair), and XLA's cost analysis of each compiled
epoch (equal figures: the same program).
"""

import argparse
import datetime
import json
import os
import platform
import time

import jax
import jax.numpy as jnp
import numpy as np

from lira_jax import config as config_lib
from lira_jax.shadow import engine, recipe_models
from lira_jax.shadow.data import load_dataset, make_keep
from lira_jax.shadow.devices import use_every_cpu_core
from lira_jax.shadow.trainer import ChunkTrainer, make_plan

ROWS = {
    "builtin": "cnn",
    "linen": "user_cnn:LinenCNN",
    "nnx": "user_cnn:NnxCNN",
    "linen_flax_conv": "user_cnn:LinenFlaxConv",
}


class Row:
    """One model's compiled chunk, ready to time epochs on."""

    def __init__(self, arch: str, dataset, models: int):
        config = config_lib.with_overrides(
            config_lib.Config(), [f"model.arch='{arch}'", f"train.num_models={models}", "train.epochs=100"]
        )
        self.plan = make_plan(config, dataset)
        self.trainer = ChunkTrainer(
            self.plan, dataset, make_keep(models, len(dataset.labels), seed=0), engine.model_mesh(models)
        )
        self.compiled = self.trainer.compiled_epoch(models)
        self.keys, self.hyperparameters, self.keep_rows = self.trainer.chunk_inputs(np.arange(models))
        self.states = self.trainer.init(self.keys)
        self.epoch = 0
        self.examples_per_epoch = models * self.trainer.steps * config.train.batch_size
        self.train_epochs(1)  # the first call runs what compiling left

    def train_epochs(self, count: int) -> float:
        """Trains `count` epochs; returns model-examples/s over them."""
        started = time.perf_counter()
        for _ in range(count):
            self.states, metrics = self.compiled(
                self.states, self.keys, self.hyperparameters, jnp.int32(self.epoch), self.keep_rows,
                self.trainer.images, self.trainer.labels,
            )  # fmt: skip
            self.epoch += 1
        jax.block_until_ready((self.states, metrics))
        return self.examples_per_epoch * count / (time.perf_counter() - started)


def paired_ratio(rates: list[float], builtin: list[float]) -> float:
    return round(float(np.median([rate / base for rate, base in zip(rates, builtin, strict=True)])), 3)


def compiled_cost(compiled) -> dict:
    """XLA's own count of the compiled epoch (a scanned epoch's body, a host-stepped one's step): the same
    figures mean the same program, whatever the machine's load."""
    analysis = compiled.cost_analysis()
    analysis = analysis[0] if isinstance(analysis, list) else analysis
    return {key: analysis.get(key) for key in ("flops", "bytes accessed")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=32, help="models in the one chunk timed")
    parser.add_argument("--epochs", type=int, default=4, help="timed epochs per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    use_every_cpu_core()  # as python -m lira_jax.train does
    dataset = load_dataset("digits")
    rows = {name: Row(arch, dataset, args.models) for name, arch in ROWS.items()}
    rates = {name: [] for name in rows}
    for _ in range(args.repeats):
        for name, row in rows.items():
            rates[name].append(round(row.train_epochs(args.epochs)))
    medians = {name: float(np.median(values)) for name, values in rates.items()}
    users = list(ROWS)[1:]
    device = jax.devices()[0]
    result = {
        "benchmark": "own_recipe_throughput",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "device": {"platform": device.platform, "kind": device.device_kind, "count": jax.device_count()},
        "machine": {"cpu_count": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                    "load_average_1_5_15": os.getloadavg()},
        "setup": {"data": "digits (1,797)", "model": "CNN width 8", "batch": 64, "models": args.models,
                  "timed_epochs_per_repeat": args.epochs, "repeats": args.repeats},
        "model_batching": {name: row.plan.model_batching for name, row in rows.items()},
        "conv": {name: recipe_models.conv_of(row.plan.model) for name, row in rows.items()},
        "model_examples_per_s": rates,
        "median_model_examples_per_s": medians,
        "median_ratio_to_builtin": {name: round(medians[name] / medians["builtin"], 3) for name in users},
        # each repeat's row against the built-in's timed just before it (a drifting machine moves both)
        "median_paired_ratio_to_builtin": {name: paired_ratio(rates[name], rates["builtin"]) for name in users},
        "compiled_epoch_cost": {name: compiled_cost(row.compiled) for name, row in rows.items()},
    }  # fmt: skip
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
