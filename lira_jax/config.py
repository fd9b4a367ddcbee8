"""Run configuration: dataclasses as data, TOML loading, `--set key=value` overrides (the rules they must
keep: config_checks.py).

A config has the sections `[data]`, `[model]`, `[train]`, `[vary]`, `[query]` and `[canaries]`; each key
of a section is a field below, and `--set train.num_models=8` overrides one of them. The defaults are the
CPU default run (`configs/digits.toml` says the same thing in TOML).
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
    source: str = "digits"  # digits | tfds:NAME | idx:DIR | npz:PATH | synthetic:purchase[:N]
    splits: str = "train+test"  # pool both splits: every example can be a member (the LiRA setup)
    limit: int = 0  # keep only the first `limit` examples; 0 keeps all
    data_dir: str = ""  # TFDS data directory; "" = TFDS's default


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    arch: str = "cnn"  # cnn | fastnet | resnet18 | wrn (images) | mlp (tables) | transformer (token ids)
    width: int = 8  # cnn: channels of the first conv (doubled twice); resnet18: 64 in the paper
    depth: int = 28  # wrn only
    widen: int = 2  # wrn only
    dropout: float = 0.0  # before the classifier
    norm: str = "batch"  # batch | group: GroupNorm has no cross-example statistics (DP-SGD needs it)
    conv: str = "auto"  # native | matmul (im2col) | auto: measured with train.model_batching (shadow/batching.py)
    hidden: tuple[int, ...] = (1024, 512, 256, 128)  # mlp: hidden widths (Shokri et al.'s Purchase-100 net)
    activation: str = "tanh"  # mlp: tanh | relu | gelu | silu | sigmoid
    embed_dim: int = 64  # transformer: width of the token embedding and of every block
    layers: int = 2  # transformer: encoder blocks
    heads: int = 4  # transformer: attention heads (embed_dim must be a multiple of them)
    vocab_size: int = 0  # transformer: token ids lie in [0, vocab_size); 0 = the data's largest id + 1
    pooling: str = "mean"  # transformer: mean over positions | cls (a learned token in front)


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    num_models: int = 64
    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 0.1  # peak of train.schedule
    warmup_epochs: float = 1.0
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-3
    label_smoothing: float = 0.0
    augment: tuple[str, ...] = ()  # names from lira_jax.shadow.augment, e.g. ("flip", "crop:4")
    augment_strength: float = 1.0  # probability that an image of a batch gets the augmentations at all
    keep: str = "balanced"  # balanced: each example in exactly num_models / 2 models; bernoulli: each pair
    keep_probability: float = 0.5  # bernoulli only
    seed: int = 0
    models_per_step: int | str = "auto"  # models trained together; auto: the most that fit (on CPU: in its cache)
    precision: str = "float32"  # float32 | bfloat16 (bf16 compute, fp32 parameters and optimizer state)
    model_batching: str = "auto"  # vmap: one batched computation; loop: each device's models in turn (lax.map);
    # host: each device's models in turn, unrolled, and the steps dispatched from the host (shadow/stepping.py);
    # auto: the faster, measured for the run's chunk size (shadow/batching.py; model.conv = "auto" likewise)
    compilation_cache: str = ""  # folder of compiled programs kept across runs; "" = the default, "off" = none
    # (shadow/compile_cache.py: LIRA_JAX_COMPILATION_CACHE, else ~/.cache/lira_jax/jax)
    checkpoint_minutes: float = 10.0  # Orbax checkpoint of an unfinished chunk at most this often; 0: every epoch
    dp_sgd: bool = False  # DP-SGD: clip each example's gradient to dp_clip_norm, add Gaussian noise
    dp_noise_multiplier: float = 1.0  # noise standard deviation / dp_clip_norm
    dp_clip_norm: float = 1.0
    dp_delta: float = 1e-5  # the delta for which epsilon is reported
    dp_sampling: str = "shuffle"  # shuffle: fixed-size batches of a shuffled order (epsilon: the usual approximation)
    # | poisson: each member joins each step's batch with probability batch_size / members (epsilon: a proof)
    optimizer: str = "sgd"  # sgd | adam | adamw | lamb | lion | rmsprop | adagrad (optax; shadow/optimizers.py)
    b1: float | str = "auto"  # adam, adamw, lamb, lion: first-moment decay; "auto": optax's default for the optimizer
    b2: float | str = "auto"  # adam, adamw, lamb, lion: second-moment decay; rmsprop: its decay; "auto" likewise
    eps: float | str = "auto"  # adam, adamw, lamb, rmsprop, adagrad: the denominator's epsilon; "auto" likewise
    schedule: str = "cosine"  # cosine | constant | linear | step | onecycle (after warmup_epochs; onecycle's own rise)
    step_boundaries: tuple[float, ...] = (0.5, 0.75)  # step: fractions of a model's steps where its rate drops
    step_factor: float = 0.1  # step: the rate is multiplied by this at each boundary
    grad_clip_norm: float = 0.0  # clip each step's gradient to this global L2 norm; 0 = off (DP-SGD clips apart)


@dataclasses.dataclass(frozen=True)
class VaryConfig:
    """Per-model hyperparameters: [low, high] draws one value per model from its global index; [] = all
    models use the [train] value. learning_rate and weight_decay are log-uniform, epochs uniform integers
    (inclusive), the others uniform."""

    learning_rate: tuple[float, ...] = ()
    weight_decay: tuple[float, ...] = ()
    label_smoothing: tuple[float, ...] = ()
    epochs: tuple[int, ...] = ()
    augment_strength: tuple[float, ...] = ()


@dataclasses.dataclass(frozen=True)
class QueryConfig:
    views: tuple[str, ...] = ("identity",)  # names from lira_jax.shadow.augment.parse_views; images: add "mirror"
    batch_size: int = 512  # examples per inference step
    logits_dtype: str = "float32"  # float16 | float32 | none (no logits.npy, for many classes)
    save_epochs: tuple[int, ...] = ()  # also store scores (and logits) after these epochs, in epochs/E/


@dataclasses.dataclass(frozen=True)
class CanaryConfig:
    """Extra examples appended after the data set's N0 (shadow/canaries.py), kept by the keep matrix like any."""

    count: int = 0  # 0: no canaries, the run as without this section
    kind: str = "mislabeled"  # mislabeled: copies of real examples with another label | noise: random inputs and labels
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class Config:
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    vary: VaryConfig = VaryConfig()
    query: QueryConfig = QueryConfig()
    canaries: CanaryConfig = CanaryConfig()


SECTIONS: dict[str, type] = {field.name: field.type for field in dataclasses.fields(Config)}
CHOICES: dict[str, tuple[str, ...]] = {
    "data.splits": ("train+test", "train", "test"),
    "model.arch": ("cnn", "fastnet", "resnet18", "wrn", "mlp", "transformer"),  # or "package.module:NAME"
    "model.activation": ("tanh", "relu", "gelu", "silu", "sigmoid"),
    "model.pooling": ("mean", "cls"),
    "model.conv": ("auto", "native", "matmul"),
    "model.norm": ("batch", "group"),
    "train.keep": ("balanced", "bernoulli"),
    "train.precision": ("float32", "bfloat16"),
    "train.model_batching": ("auto", "vmap", "loop", "host"),
    "train.optimizer": ("sgd", "adam", "adamw", "lamb", "lion", "rmsprop", "adagrad", "custom"),
    "train.schedule": ("cosine", "constant", "linear", "step", "onecycle"),
    "query.logits_dtype": ("float16", "float32", "none"),
    "train.dp_sampling": ("shuffle", "poisson"),
    "canaries.kind": ("mislabeled", "noise"),
}
# Built-in nets of dense layers (no convolutions, no BatchNorm: model.conv and model.norm do not apply).
DENSE_ARCHS = ("mlp", "transformer")
# Keys that do not change what a run computes (up to float rounding): a run may resume with other values.
NOT_IDENTITY = {
    "train.models_per_step", "model.conv", "train.checkpoint_minutes", "train.model_batching", "train.compilation_cache"
}  # fmt: skip


def _coerce(key: str, value: Any, annotation: Any) -> Any:
    """Checks `value` (as parsed from TOML) against a field's type; ints are accepted for floats."""
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str) and _has_surrogate(value):
        raise UserError(f"{key} holds bytes that are not UTF-8 text: {value!r}")
    if annotation is int or annotation is float or annotation is str or annotation is bool:
        if type(value) is annotation:
            return value
        raise UserError(f"{key} must be a {annotation.__name__}, got {value!r}")
    origin = typing.get_origin(annotation)
    if origin is tuple:
        item_type = typing.get_args(annotation)[0]
        if isinstance(value, str | int | float):
            value = [value]
        if not isinstance(value, list | tuple):
            raise UserError(f"{key} must be a list of {item_type.__name__}s, got {value!r}")
        return tuple(_coerce(f"{key}[{index}]", item, item_type) for index, item in enumerate(value))
    if origin in (types.UnionType, typing.Union):
        if float in typing.get_args(annotation) and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        for option in typing.get_args(annotation):
            if type(value) is option:
                return value
        names = " or ".join(option.__name__ for option in typing.get_args(annotation))
        raise UserError(f"{key} must be {names}, got {value!r}")
    raise TypeError(f"unsupported field type {annotation} for {key}")


def _has_surrogate(text: str) -> bool:
    """Whether `text` holds lone surrogates (undecodable bytes of a command line): it cannot be written out."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


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
    from lira_jax.config_checks import validate  # the rules read this module's dataclasses

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
        # TOML basic strings: quote, backslash and control characters (tab aside) must be escaped.
        return '"' + "".join(f"\\u{ord(char):04x}" if _must_escape(char) else char for char in value) + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def _must_escape(char: str) -> bool:
    return char in '"\\' or (ord(char) < 0x20 and char != "\t") or ord(char) == 0x7F


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
    except RecursionError:  # tomllib recurses once per level of nesting
        raise UserError(f"{source} is nested too deeply to be a config") from None
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
    except RecursionError:
        raise UserError(f"--set {dotted}: the value is nested too deeply") from None
    return section, key, value


def with_overrides(config: Config, assignments: Sequence[str]) -> Config:
    tree: dict[str, dict[str, Any]] = {}
    for assignment in assignments:
        section, key, value = parse_override(assignment)
        tree.setdefault(section, {})[key] = value
    return from_dict(tree, base=config)


def longest_epochs(config: Config) -> int:
    """Epochs of the longest-trained model: the run's length."""
    return config.vary.epochs[1] if config.vary.epochs else config.train.epochs


def is_import_path(arch: str) -> bool:
    """Whether model.arch names a user's model, "package.module:NAME" (both parts non-empty)."""
    module, colon, name = arch.partition(":")
    return bool(colon and module.strip() and name.strip())
