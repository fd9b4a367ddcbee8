"""The config's rules beyond its types: numeric ranges, choices, and what keys demand of each other.

`config.from_dict` ends every config here (`validate`), so a Config that exists has passed them.
"""

import dataclasses
import math

from lira_jax.config import (
    CHOICES,
    DENSE_ARCHS,
    SECTIONS,
    Config,
    ModelConfig,
    TrainConfig,
    VaryConfig,
    is_import_path,
    longest_epochs,
)
from lira_jax.errors import UserError

INT32_MAX = 2**31 - 1  # sizes and counts reach JAX as int32
SEED_MAX = 2**32 - 1  # jax.random.key keeps 32 bits: larger seeds would repeat smaller ones
# Inclusive ranges of the integer keys (and of each item of a tuple key); any other integer: [0, INT32_MAX].
INT_RANGES: dict[str, tuple[int, int]] = {
    "model.width": (1, INT32_MAX),
    "model.depth": (1, INT32_MAX),
    "model.widen": (1, INT32_MAX),
    "model.hidden": (1, INT32_MAX),
    "model.embed_dim": (1, INT32_MAX),
    "model.layers": (1, INT32_MAX),
    "model.heads": (1, INT32_MAX),
    "train.num_models": (2, INT32_MAX),
    "train.epochs": (1, INT32_MAX),
    "train.batch_size": (1, INT32_MAX),
    "train.seed": (0, SEED_MAX),
    "vary.epochs": (1, INT32_MAX),
    "query.batch_size": (1, INT32_MAX),
    "query.save_epochs": (1, INT32_MAX),
    "canaries.seed": (0, SEED_MAX),
}
# Ranges of the float keys as intervals; every float (vary's too) must also be finite: NaN and ±inf never are.
FLOAT_RANGES: dict[str, str] = {
    "model.dropout": "[0, 1)",
    "train.learning_rate": "(0, inf)",
    "train.warmup_epochs": "[0, inf)",
    "train.momentum": "[0, 1)",
    "train.weight_decay": "[0, inf)",
    "train.label_smoothing": "[0, 1)",
    "train.augment_strength": "[0, 1]",
    "train.keep_probability": "(0, 1)",
    "train.checkpoint_minutes": "[0, inf)",
    "train.dp_noise_multiplier": "[0, inf)",
    "train.dp_clip_norm": "(0, inf)",
    "train.dp_delta": "(0, 1)",
    "train.b1": "[0, 1)",
    "train.b2": "[0, 1)",
    "train.eps": "(0, inf)",
    "train.step_boundaries": "(0, 1)",
    "train.step_factor": "(0, inf)",
    "train.grad_clip_norm": "[0, inf)",
}
# The optimizer parameters each optimizer reads (the others must stay "auto"); "custom" is an
# optax.GradientTransformation given from Python (lira_jax.train_shadows), which brings its own.
OPTIMIZER_PARAMETERS: dict[str, tuple[str, ...]] = {
    "sgd": (), "adam": ("b1", "b2", "eps"), "adamw": ("b1", "b2", "eps"), "lamb": ("b1", "b2", "eps"),
    "lion": ("b1", "b2"), "rmsprop": ("b2", "eps"), "adagrad": ("eps",), "custom": (),
}  # fmt: skip


def in_interval(value: float, interval: str) -> bool:
    """Whether finite `value` lies in an interval written "[low, high)" (bounds numbers or inf)."""
    low_text, high_text = (part.strip() for part in interval[1:-1].split(","))
    low, high = float(low_text), float(high_text)
    above = value >= low if interval[0] == "[" else value > low
    below = value <= high if interval[-1] == "]" else value < high
    return math.isfinite(value) and above and below


def _check_numbers(config: Config) -> None:
    """Every number of the config finite and in its range (INT_RANGES, FLOAT_RANGES), one message each."""
    for section_name in SECTIONS:
        for key, value in dataclasses.asdict(getattr(config, section_name)).items():
            dotted = f"{section_name}.{key}"
            for item in value if isinstance(value, tuple) else (value,):
                if isinstance(item, bool) or not isinstance(item, int | float):
                    continue
                if isinstance(item, int):
                    low, high = INT_RANGES.get(dotted, (0, INT32_MAX))
                    if not low <= item <= high:
                        raise UserError(f"{dotted} must be an integer in [{low}, {high}], got {item}")
                    continue
                interval = FLOAT_RANGES.get(dotted, "(-inf, inf)")
                if not in_interval(item, interval):
                    shown = interval.replace("inf", "∞")
                    raise UserError(f"{dotted} must be a finite number in {shown}, got {item!r}")


def validate(config: Config) -> Config:
    """Range and choice checks that types alone do not catch."""
    for dotted, choices in CHOICES.items():
        section, key = dotted.split(".")
        value = getattr(getattr(config, section), key)
        if dotted == "model.arch" and is_import_path(value):
            continue
        if value not in choices:
            also = " or 'package.module:NAME' (your own Flax model)" if dotted == "model.arch" else ""
            raise UserError(f"{dotted} must be one of {', '.join(choices)}{also}, got {value!r}")
    _check_numbers(config)
    train = config.train
    if train.keep == "balanced" and train.num_models % 2:
        raise UserError(f"train.num_models must be even with train.keep = 'balanced', got {train.num_models}")
    shortest = config.vary.epochs[0] if config.vary.epochs else train.epochs
    if train.warmup_epochs > shortest:
        raise UserError(f"train.warmup_epochs ({train.warmup_epochs}) exceeds the epochs of a model ({shortest})")
    chunk = train.models_per_step
    if chunk != "auto" and not (isinstance(chunk, int) and 1 <= chunk <= train.num_models):
        raise UserError(
            f"train.models_per_step must be 'auto' or an integer in [1, train.num_models = {train.num_models}],"
            f" got {chunk!r}"
        )
    _validate_dp(train, config.model)
    _validate_vary(config.vary)
    _validate_optimizer(train, config.vary)
    saved = config.query.save_epochs
    if list(saved) != sorted(set(saved)) or (saved and not 1 <= saved[0] <= saved[-1] < longest_epochs(config)):
        raise UserError(
            f"query.save_epochs must be increasing epoch counts in [1, {longest_epochs(config) - 1}] (the last"
            f" epoch is the run's own arrays), got {list(saved)}"
        )
    depth = config.model.depth
    if config.model.arch == "wrn" and (depth < 10 or (depth - 4) % 6):
        raise UserError(f"model.depth of a WRN must be 6k + 4 with k >= 1 (e.g. 16, 28, 40), got {depth}")
    if config.model.arch == "transformer" and config.model.embed_dim % config.model.heads:
        raise UserError(
            f"model.embed_dim ({config.model.embed_dim}) must be a multiple of model.heads ({config.model.heads})"
        )
    if not config.query.views:
        raise UserError("query.views must name at least one view (e.g. identity)")
    return config


def _validate_optimizer(train: TrainConfig, vary: VaryConfig) -> None:
    used = OPTIMIZER_PARAMETERS[train.optimizer]
    for name in ("b1", "b2", "eps"):
        value = getattr(train, name)
        if isinstance(value, str) and value != "auto":
            raise UserError(f"train.{name} must be a number or 'auto' (optax's default), got {value!r}")
        if value != "auto" and name not in used:
            reads = ", ".join(f"train.{key}" for key in used) or "none of b1, b2, eps"
            raise UserError(f"train.{name} does not apply to train.optimizer = {train.optimizer!r} (it reads {reads})")
    boundaries = train.step_boundaries
    if list(boundaries) != sorted(set(boundaries)):
        raise UserError(f"train.step_boundaries must be increasing fractions in (0, 1), got {list(boundaries)}")
    if train.optimizer == "custom":
        varied = [f"vary.{key}" for key in ("learning_rate", "weight_decay") if getattr(vary, key)]
        if varied:
            raise UserError(
                f"{', '.join(varied)} cannot vary with a custom optax transformation: it brings its own step sizes"
            )


def _validate_dp(train: TrainConfig, model: ModelConfig) -> None:
    if not train.dp_sgd:
        if train.dp_sampling == "poisson":
            raise UserError("train.dp_sampling = 'poisson' needs train.dp_sgd = true: it is DP-SGD's sampler")
        return
    # A user's model is checked once built; the dense built-ins have no BatchNorm
    if model.norm == "batch" and not is_import_path(model.arch) and model.arch not in DENSE_ARCHS:
        raise UserError(
            "train.dp_sgd needs model.norm = 'group': BatchNorm mixes the examples of a batch, so per-example"
            " gradients (and the privacy guarantee) do not exist with it"
        )
    if any(spec.split(":")[0] == "mixup" for spec in train.augment):
        raise UserError("train.dp_sgd cannot be combined with mixup: a mixed example carries two examples' data")


def _validate_vary(vary: VaryConfig) -> None:
    allowed = {
        "learning_rate": (lambda low, high: low > 0, "positive (it is drawn log-uniformly)"),
        "weight_decay": (lambda low, high: low > 0, "positive (it is drawn log-uniformly)"),
        "label_smoothing": (lambda low, high: low >= 0 and high < 1, "in [0, 1)"),
        "epochs": (lambda low, high: low >= 1, "at least 1"),
        "augment_strength": (lambda low, high: low >= 0 and high <= 1, "in [0, 1]"),
    }
    for key, (holds, requirement) in allowed.items():
        values = getattr(vary, key)
        if not values:
            continue
        if len(values) != 2 or values[0] > values[1]:
            raise UserError(f"vary.{key} must be [] or [low, high] with low <= high, got {list(values)}")
        if not holds(*values):
            raise UserError(f"vary.{key} must be {requirement}, got {list(values)}")
