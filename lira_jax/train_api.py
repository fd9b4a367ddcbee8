"""`lira_jax.train_shadows`: the command line's training from Python, with the user's arrays, model and optimizer.

Importing this module imports no JAX; calling train_shadows does.
"""

import dataclasses
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from lira_jax import config as config_lib
from lira_jax.errors import UserError

# Where a setting given by its bare field name is looked for, in this order ([vary] only dotted, e.g.
# "vary.learning_rate"): `batch_size` is train.batch_size, `views` query.views.
BARE_NAME_SECTIONS = ("train", "model", "data", "query")


def arrays_digest(x: np.ndarray, y: np.ndarray) -> str:
    """sha256 of the arrays' dtypes, shapes and bytes: the run's data.source is "arrays:" + this."""
    digest = hashlib.sha256()
    for array in (x, y):
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def settings_tree(settings: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{"num_models": 8, "query.views": [...]} -> {"train": {"num_models": 8}, "query": {"views": [...]}}:
    dotted keys as they are, bare names in the first of BARE_NAME_SECTIONS that has them."""
    fields = {name: {field.name for field in dataclasses.fields(kind)} for name, kind in config_lib.SECTIONS.items()}
    tree: dict[str, dict[str, Any]] = {}
    for key, value in settings.items():
        if "." in key:
            section, _, name = key.partition(".")
        else:
            section = next((name for name in BARE_NAME_SECTIONS if key in fields[name]), None)
            if section is None:
                raise UserError(f"unknown setting {key!r}: give a config key by its name (num_models) or dotted")
            name = key
        if isinstance(value, np.generic):
            value = value.item()
        tree.setdefault(section, {})[name] = list(value) if isinstance(value, tuple) else value
    return tree


def train_shadows(
    x: Any,
    y: Any,
    *,
    model: str | Callable,
    out: str | Path,
    optimizer: Any = None,
    config: str | Path | config_lib.Config | None = None,
    attack: bool = True,
    quiet: bool = False,
    accept_model_change: bool = False,
    **settings: Any,
) -> Path:
    """Trains shadow models on `x`, `y` into the run folder `out`, as `python -m lira_jax.train` would
    (the same folder, resumed the same way), attacks them unless `attack` is False, and returns `out`.

    x: images [N, H, W(, C)] (any numbers; normalised per channel as npz:PATH data are); y: int[N] labels.
    model: a built-in name ("cnn"), "package.module:NAME", or NAME itself: a callable as in
    docs/own_recipe.md (linen or nnx; model.arch records "module:qualified name", the run its source's
    sha256). optimizer: None (train.optimizer of the settings), a name ("adamw"), or an
    optax.GradientTransformation, the whole optimizer (train.optimizer = "custom", recorded by its
    fingerprint: a resume must pass an equivalent one). config: a TOML file (or a Config) the settings
    start from.
    settings: config keys by field name (num_models=64, epochs=10: [train] first, then [model], [data],
    [query]) or dotted (**{"vary.learning_rate": [0.01, 0.1]}).
    A resume with other arrays is refused (data.source holds their digest), as is one whose model source
    changed unless accept_model_change. On a CPU JAX is given one device per core if it has not started.
    """
    from lira_jax.shadow.devices import use_every_cpu_core

    use_every_cpu_core()

    import optax

    from lira_jax.shadow.recipe_models import GivenRecipe, arch_of
    from lira_jax.train import ARRAYS_SOURCE, TrainJob, run_job

    x, y = np.asarray(x), np.asarray(y)
    base = (
        config if isinstance(config, config_lib.Config) else config_lib.load(config) if config else config_lib.Config()
    )
    tree = settings_tree(settings)
    tree.setdefault("data", {})["source"] = ARRAYS_SOURCE + arrays_digest(x, y)
    given_model = None
    if isinstance(model, str):
        tree.setdefault("model", {})["arch"] = model
    elif callable(model):
        tree.setdefault("model", {})["arch"] = arch_of(model)
        given_model = model
    else:
        raise UserError(f"model must be a built-in name, 'package.module:NAME' or a callable, got {model!r}")
    given_optimizer = None
    if isinstance(optimizer, str):
        tree.setdefault("train", {})["optimizer"] = optimizer
    elif isinstance(optimizer, optax.GradientTransformation):
        tree.setdefault("train", {})["optimizer"] = "custom"
        given_optimizer = optimizer
    elif optimizer is not None:
        raise UserError(f"optimizer must be a name or an optax.GradientTransformation, got {type(optimizer).__name__}")
    job = TrainJob(
        config_lib.from_dict(tree, base),
        Path(out),
        quiet=quiet,
        attack=attack,
        accept_model_change=accept_model_change,
        given=GivenRecipe(given_model, given_optimizer),
        arrays=(x, y),
    )
    return run_job(job)
