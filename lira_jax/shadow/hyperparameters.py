"""Per-model training hyperparameters: the [train] values, or per-model draws from the [vary] ranges.

A model's values depend only on the config and its global index (never on its chunk), so a run can span
a wide range of generalisation gaps in one go and still resume, slice and shard like any other run.
"""

from typing import NamedTuple

import numpy as np

from lira_jax.config import Config

LOG_UNIFORM = ("learning_rate", "weight_decay")


class Hyperparameters(NamedTuple):
    """One value per model: float32[M] each, epochs int32[M]."""

    learning_rate: np.ndarray
    weight_decay: np.ndarray
    label_smoothing: np.ndarray
    epochs: np.ndarray
    augment_strength: np.ndarray


def draw(config: Config, model_indices: np.ndarray) -> Hyperparameters:
    """The hyperparameters of models `model_indices` (int[M], global indices).

    Each model draws one uniform number per field from a generator seeded by (train.seed, its index), in
    field order, whether or not the field varies: adding a range to the config leaves the others' draws.
    """
    fields = Hyperparameters._fields
    uniforms = np.array(
        [
            np.random.default_rng([config.train.seed, 0x76617279, int(index)]).random(len(fields))
            for index in model_indices
        ]
    ).reshape(len(model_indices), len(fields))
    values = {}
    for column, field in enumerate(fields):
        fixed, bounds, uniform = getattr(config.train, field), getattr(config.vary, field), uniforms[:, column]
        if not bounds:
            drawn = np.full(len(model_indices), fixed)
        elif field == "epochs":
            drawn = bounds[0] + np.floor(uniform * (bounds[1] - bounds[0] + 1))
        elif field in LOG_UNIFORM:
            drawn = bounds[0] * (bounds[1] / bounds[0]) ** uniform
        else:
            drawn = bounds[0] + uniform * (bounds[1] - bounds[0])
        values[field] = drawn.astype(np.int32 if field == "epochs" else np.float32)
    return Hyperparameters(**values)


def records(hyperparameters: Hyperparameters) -> list[dict[str, float | int]]:
    """One {field: value} dict per model, for models.json (float32 values written as their shortest text)."""
    return [
        {
            field: int(values[row]) if field == "epochs" else float(str(values[row]))
            for field, values in zip(Hyperparameters._fields, hyperparameters, strict=True)
        }
        for row in range(len(hyperparameters.epochs))
    ]
