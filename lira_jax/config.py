"""Run configuration: dataclasses as data, TOML loading, `--set key=value` overrides, validation.

A config has four sections, `[data]`, `[model]`, `[train]` and `[query]`; each key of a section is a
field below, and `--set train.num_models=8` overrides one of them. The defaults are the CPU default run
(`configs/digits.toml` says the same thing in TOML).
"""

import dataclasses
import tomllib
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lira_jax.errors import UserError


@dataclasses.dataclass(frozen=True)
class DataConfig:
    source: str = "digits"  # digits | tfds:NAME | idx:DIR | npz:PATH
    splits: str = "train+test"  # pool both splits: every example can be a member (the LiRA setup)
    limit: int = 0  # keep only the first `limit` examples; 0 keeps all
    data_dir: str = ""  # TFDS data directory; "" = TFDS's default


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    arch: str = "cnn"  # cnn | fastnet | resnet18 | wrn
    width: int = 8  # cnn: channels of the first conv (doubled twice); resnet18: 64 in the paper
    depth: int = 28  # wrn only
    widen: int = 2  # wrn only
    dropout: float = 0.0  # before the classifier
    conv: str = "auto"  # native | matmul (im2col) | auto: matmul on CPU, native elsewhere (see models.Conv)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    num_models: int = 64
    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 0.1  # peak of the cosine schedule
    warmup_epochs: float = 1.0
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-3
    label_smoothing: float = 0.0
    augment: tuple[str, ...] = ()  # names from lira_jax.augment, e.g. ("flip", "crop:4")
    keep: str = "balanced"  # balanced: each example in exactly num_models / 2 models; bernoulli: each pair
    keep_probability: float = 0.5  # bernoulli only
    seed: int = 0
    models_per_step: int | str = "auto"  # models trained together; auto = the most that fit the device
    precision: str = "float32"  # float32 | bfloat16 (bf16 compute, fp32 parameters and optimizer state)


@dataclasses.dataclass(frozen=True)
class QueryConfig:
    views: tuple[str, ...] = ("identity",)  # names from lira_jax.augment.parse_views; images: add "mirror"
    batch_size: int = 512  # examples per inference step
    logits_dtype: str = "float32"  # float16 | float32 | none (no logits.npy, for many classes)


@dataclasses.dataclass(frozen=True)
class Config:
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    query: QueryConfig = QueryConfig()


SECTIONS: dict[str, type] = {field.name: field.type for field in dataclasses.fields(Config)}
CHOICES: dict[str, tuple[str, ...]] = {
    "model.arch": ("cnn", "fastnet", "resnet18", "wrn"),
    "model.conv": ("auto", "native", "matmul"),
    "train.keep": ("balanced", "bernoulli"),
    "train.precision": ("float32", "bfloat16"),
    "query.logits_dtype": ("float16", "float32", "none"),
}
# Keys that do not change what a run computes (up to float rounding): a run may resume with other values.
NOT_IDENTITY = {"train.models_per_step", "model.conv"}


def _coerce(key: str, value: Any, annotation: Any) -> Any:
    """Checks `value` (as parsed from TOML) against a field's type; ints are accepted for floats."""
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation is int or annotation is float or annotation is str or annotation is bool:
        if type(value) is annotation:
            return value
        raise UserError(f"{key} must be a {annotation.__name__}, got {value!r}")
    origin = typing.get_origin(annotation)
    if origin is tuple:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
            raise UserError(f"{key} must be a list of strings, got {value!r}")
        return tuple(value)
    if origin in (types.UnionType, typing.Union):
        for option in typing.get_args(annotation):
            if type(value) is option:
                return value
        names = " or ".join(option.__name__ for option in typing.get_args(annotation))
        raise UserError(f"{key} must be {names}, got {value!r}")
    raise TypeError(f"unsupported field type {annotation} for {key}")


def from_dict(tree: dict[str, Any], base: Config = Config()) -> Config:
    """Builds a Config from nested `{section: {key: value}}`, starting from `base`; unknown keys are errors."""
    sections = {}
    for section_name, section_type in SECTIONS.items():
        values = tree.get(section_name, {})
        if not isinstance(values, dict):
            raise UserError(f"[{section_name}] must be a table of keys, got {values!r}")
        field_types = {field.name: field.type for field in dataclasses.fields(section_type)}
        updates = {}
        for key, value in values.items():
            if key not in field_types:
                known = ", ".join(field_types)
                raise UserError(f"unknown config key {section_name}.{key} (known in [{section_name}]: {known})")
            updates[key] = _coerce(f"{section_name}.{key}", value, field_types[key])
        sections[section_name] = dataclasses.replace(getattr(base, section_name), **updates)
    for section_name in tree:
        if section_name not in SECTIONS:
            raise UserError(f"unknown config section [{section_name}] (known: {', '.join(SECTIONS)})")
    return validate(Config(**sections))


def to_dict(config: Config) -> dict[str, dict[str, Any]]:
    """The config as nested `{section: {key: value}}` with lists for tuples (what TOML holds)."""
    return {
        name: {key: list(value) if isinstance(value, tuple) else value for key, value in section.items()}
        for name, section in dataclasses.asdict(config).items()
    }


def identity(config: Config) -> dict[str, dict[str, Any]]:
    """What must match for a run folder to be resumed with this config."""
    tree = to_dict(config)
    for dotted in NOT_IDENTITY:
        section, key = dotted.split(".")
        del tree[section][key]
    return tree


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def to_toml(config: Config) -> str:
    """The config as TOML text that `loads` reads back to an equal Config."""
    lines = []
    for section, values in to_dict(config).items():
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in values.items())
        lines.append("")
    return "\n".join(lines)


def loads(text: str, source: str = "config") -> Config:
    try:
        tree = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise UserError(f"{source} is not valid TOML: {error}") from None
    return from_dict(tree)


def load(path: str | Path) -> Config:
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UserError(f"config file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UserError(f"cannot read config file {path}: {error}") from None
    return loads(text, source=f"config file {path}")


def parse_override(assignment: str) -> tuple[str, str, Any]:
    """`"train.epochs=2"` -> `("train", "epochs", 2)`; the value is read as TOML, else as a bare string."""
    if "=" not in assignment:
        raise UserError(f"--set expects KEY=VALUE, got {assignment!r}")
    dotted, text = (part.strip() for part in assignment.split("=", 1))
    if dotted.count(".") != 1:
        raise UserError(f"--set key must be SECTION.KEY (e.g. train.num_models), got {dotted!r}")
    section, key = dotted.split(".")
    try:
        value = tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        value = text
    return section, key, value


def with_overrides(config: Config, assignments: Sequence[str]) -> Config:
    tree: dict[str, dict[str, Any]] = {}
    for assignment in assignments:
        section, key, value = parse_override(assignment)
        tree.setdefault(section, {})[key] = value
    return from_dict(tree, base=config)


def validate(config: Config) -> Config:
    """Range and choice checks that types alone do not catch."""
    for dotted, choices in CHOICES.items():
        section, key = dotted.split(".")
        value = getattr(getattr(config, section), key)
        if value not in choices:
            raise UserError(f"{dotted} must be one of {', '.join(choices)}, got {value!r}")
    train = config.train
    if train.num_models < 2:
        raise UserError(f"train.num_models must be at least 2 (one target and one shadow), got {train.num_models}")
    if train.keep == "balanced" and train.num_models % 2:
        raise UserError(f"train.num_models must be even with train.keep = 'balanced', got {train.num_models}")
    positive = {
        "train.epochs": train.epochs,
        "train.batch_size": train.batch_size,
        "train.learning_rate": train.learning_rate,
        "query.batch_size": config.query.batch_size,
        "model.width": config.model.width,
    }
    for key, value in positive.items():
        if value <= 0:
            raise UserError(f"{key} must be positive, got {value}")
    in_unit_interval = {
        "train.momentum": train.momentum,
        "train.label_smoothing": train.label_smoothing,
        "model.dropout": config.model.dropout,
    }
    for key, value in in_unit_interval.items():
        if not 0 <= value < 1:
            raise UserError(f"{key} must be in [0, 1), got {value}")
    if not 0 < train.keep_probability < 1:
        raise UserError(f"train.keep_probability must be in (0, 1), got {train.keep_probability}")
    if train.weight_decay < 0 or train.warmup_epochs < 0 or config.data.limit < 0:
        raise UserError("train.weight_decay, train.warmup_epochs and data.limit must not be negative")
    if train.warmup_epochs > train.epochs:
        raise UserError(f"train.warmup_epochs ({train.warmup_epochs}) exceeds train.epochs ({train.epochs})")
    chunk = train.models_per_step
    if chunk != "auto" and not (isinstance(chunk, int) and 1 <= chunk <= train.num_models):
        raise UserError(
            f"train.models_per_step must be 'auto' or an integer in [1, train.num_models = {train.num_models}],"
            f" got {chunk!r}"
        )
    if config.model.arch == "wrn" and (config.model.depth - 4) % 6:
        raise UserError(f"model.depth of a WRN must be 6k + 4 (e.g. 16, 28, 40), got {config.model.depth}")
    if not config.query.views:
        raise UserError("query.views must name at least one view (e.g. identity)")
    return config
