"""RUN/recipe.json: what a run's config.toml cannot say about what it trains, checked on every resume.

    {"model": {"arch", "api": "linen" | "nnx", "name", "file", "sha256"},   a user's model and its source
     "optimizer": {"custom": "optax.GradientTransformation", "fingerprint"},   one given from Python
     "accepted": [{"model": the record before, "models_done": "0:4", "at": ISO time}, ...]}

It is written with the run, and only for a run that has something to record (a built-in net with a named
optimizer has none). A resume whose model source differs (name or sha256; a moved file with the same
content is the same model) is refused, nothing touched, unless the user accepts the change
(`train --accept-model-change`, `train_shadows(..., accept_model_change=True)`): the models not yet done
then train with the new source, and "accepted" says which models were done before. A custom optimizer
is compared by its behavioural fingerprint (optimizers.fingerprint) and cannot be accepted: it is no
change of source but another optimizer. No JAX here: the audit half may read it.
"""

import datetime
import json
from pathlib import Path
from typing import Any

from lira_jax.errors import UserError
from lira_jax.writing import write_atomically

RECIPE_FILE = "recipe.json"
MODEL_IDENTITY = ("arch", "api", "name", "sha256")  # what must match; "file" may move


def read(run_path: Path) -> dict[str, Any]:
    """The run's recipe record ({} when it has none); UserError if the file is not JSON."""
    path = run_path / RECIPE_FILE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise UserError(f"{path} is not readable JSON ({error}); refusing to touch the folder") from None


def text(recipe: dict[str, Any]) -> str:
    return json.dumps(recipe, indent=1)


def check(run_path: Path, recipe: dict[str, Any], accept_model_change: bool, models_done: str) -> None:
    """Refuses to resume the run at `run_path` with `recipe` if its model or custom optimizer differs from
    the one it records; with `accept_model_change`, a changed model is recorded instead (recipe.json is
    rewritten, with the models done before, `models_done`, in "accepted")."""
    stored = read(run_path)
    if stored.get("optimizer") != recipe.get("optimizer"):
        raise UserError(
            f"{run_path} was trained with {_optimizer_text(stored)}, and is resumed with {_optimizer_text(recipe)}:"
            " resume it with the same optimizer, or use another output folder"
        )
    before, now = stored.get("model"), recipe.get("model")
    if _identity(before) == _identity(now):
        return
    if before is None or now is None:
        recorded = "no model source" if before is None else f"model {before['name']}"
        raise UserError(f"{run_path} records {recorded} in {RECIPE_FILE}: use another output folder")
    if not accept_model_change:
        raise UserError(
            f"{run_path} was trained with model {before['name']} from {before['file']} (sha256"
            f" {before['sha256'][:12]}), whose source is now {now['file']} (sha256 {now['sha256'][:12]}): rerun with"
            " --accept-model-change (train_shadows(..., accept_model_change=True)) to train the unfinished models"
            " with the changed source, or use another output folder"
        )
    at = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    accepted = [*stored.get("accepted", []), {"model": before, "models_done": models_done, "at": at}]
    write_atomically(run_path / RECIPE_FILE, text({**recipe, "accepted": accepted}))


def _identity(model: dict[str, Any] | None) -> tuple | None:
    return None if model is None else tuple(model.get(key) for key in MODEL_IDENTITY)


def _optimizer_text(recipe: dict[str, Any]) -> str:
    optimizer = recipe.get("optimizer")
    if optimizer is None:
        return "the optimizer its config names"
    return f"a custom optax transformation (fingerprint {optimizer['fingerprint'][:12]})"
