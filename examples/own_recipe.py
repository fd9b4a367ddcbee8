"""Your own recipe, end to end: a flax.linen model and a flax.nnx model, each with its own optax
optimizer, trained as shadow models from Python on arrays in memory, then attacked.

    python examples/own_recipe.py [--models 16] [--epochs 10] [--limit 0] [--out runs/own_recipe]

Each call of lira_jax.train_shadows writes a run folder like `python -m lira_jax.train` (and resumes it
the same way: run the script again). docs/own_recipe.md explains the contract the models follow.
"""

import argparse
import json
from pathlib import Path

import flax.linen as nn
import optax
from flax import nnx
from sklearn.datasets import load_digits

import lira_jax


class LinenNet(nn.Module):
    """Called as LinenNet(num_classes=C, input_shape=S); BatchNorm and dropout as Flax users write them."""

    num_classes: int
    input_shape: tuple

    @nn.compact
    def __call__(self, x, train: bool):
        for features in (16, 32):
            x = nn.Conv(features, (3, 3))(x)
            x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9)(x))
        x = nn.Dropout(0.2, deterministic=not train)(x.mean(axis=(1, 2)))
        return nn.Dense(self.num_classes)(x)


class NnxNet(nnx.Module):
    """Called as NnxNet(num_classes=C, input_shape=S, rngs=...); train and eval modes by .train() / .eval()."""

    def __init__(self, num_classes: int, input_shape: tuple, *, rngs: nnx.Rngs):
        channels = input_shape[-1]
        self.conv1 = nnx.Conv(channels, 16, (3, 3), rngs=rngs)
        self.norm1 = nnx.BatchNorm(16, momentum=0.9, rngs=rngs)
        self.conv2 = nnx.Conv(16, 32, (3, 3), rngs=rngs)
        self.norm2 = nnx.BatchNorm(32, momentum=0.9, rngs=rngs)
        self.dropout = nnx.Dropout(0.2, rngs=rngs)
        self.head = nnx.Linear(32, num_classes, rngs=rngs)

    def __call__(self, x):
        x = nnx.relu(self.norm1(self.conv1(x)))
        x = nnx.relu(self.norm2(self.conv2(x)))
        return self.head(self.dropout(x.mean(axis=(1, 2))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--limit", type=int, default=0, help="use the first N digits (0: all 1,797)")
    parser.add_argument("--out", type=Path, default=Path("runs/own_recipe"))
    args = parser.parse_args()

    x, y = load_digits(return_X_y=True)
    x = x.reshape(-1, 8, 8, 1)  # images [N, H, W, C]; normalised per channel by the engine
    if args.limit:
        x, y = x[: args.limit], y[: args.limit]
    settings = dict(num_models=args.models, epochs=args.epochs, batch_size=64, quiet=True)

    # A linen model with AdamW on a one-cycle schedule, named by the engine's own optimizer settings.
    linen_run = lira_jax.train_shadows(
        x, y, model=LinenNet, out=args.out / "linen", optimizer="adamw", learning_rate=3e-3, weight_decay=1e-4,
        schedule="onecycle", **settings,
    )  # fmt: skip
    # An nnx model with an optax transformation of your own (recorded by its fingerprint).
    own_optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(optax.cosine_decay_schedule(3e-3, 300)))
    nnx_run = lira_jax.train_shadows(x, y, model=NnxNet, out=args.out / "nnx", optimizer=own_optimizer, **settings)

    for run in (linen_run, nnx_run):
        lira = json.loads((run / "metrics.json").read_text())["attacks"]["lira_online"]
        if lira["auc"] is None:  # too few shadow models for a per-example spread
            print(f"{run}: LiRA online not applicable ({lira.get('not_applicable')})")
        else:
            print(f"{run}: LiRA online AUC {lira['auc']:.3f}, TPR at 1% FPR {lira['tpr_at_fpr']['0.01']:.4f}")


if __name__ == "__main__":
    main()
