"""A target trained elsewhere: one model's logits and members, scored against every model of a run as shadows.

`attack RUN --target-model DIR` (and `audit_logits(..., target_logits=, target_keep=)`) append the target
as model M after the run's M models, with the run's labels, and make it the only target: it gets exactly
the numbers it would get as the run's last model. Nothing of the run is copied: its arrays stay memmapped,
stacked with the one extra row (`streaming.StackedModels`).

DIR holds logits.npy float16|32|64 [N, C] (one view) or [N, V, C] and keep.npy bool (or 0/1 integers) [N],
keep[n] = the target trained on example n of the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lira_jax.audit.inputs.phi import logit_scale
from lira_jax.audit.streaming import ExampleArray, StackedModels
from lira_jax.errors import UserError
from lira_jax.store import load_array, scores_shape


@dataclass(frozen=True)
class TargetModel:
    """A checked target: logits float16|32|64 [N, V, C] and keep bool[N] (its members)."""

    logits: np.ndarray
    keep: np.ndarray


def check_target_model(
    logits: np.ndarray,
    keep: np.ndarray,
    labels: np.ndarray,
    views_classes: tuple[int, int | None],
    names: tuple[str, str] = ("target_logits", "target_keep"),
) -> TargetModel:
    """The target's logits [N, C] or [N, V, C] (as [N, V, C]) and keep [N] checked against the shadows' N
    examples (labels int[N]), V views and C classes (views_classes; C None: the shadows have no logits);
    names: how messages call the two arrays. UserError on any mismatch, a non-finite logit, or a target
    with no members or no non-members."""
    logits_name, keep_name = names
    num_examples = len(labels)
    num_views, num_classes = views_classes
    if logits.dtype.newbyteorder("=") not in (np.float16, np.float32, np.float64):
        raise UserError(f"{logits_name} must be float16, float32 or float64, got {logits.dtype}")
    if logits.ndim == 2:
        logits = logits[:, None, :]
    wanted = (
        f"[N, C] or [N, V, C] with N = {num_examples} examples and V = {num_views} views, as the shadow models have"
    )
    if logits.ndim != 3 or logits.shape[:2] != (num_examples, num_views):
        raise UserError(f"{logits_name} must be {wanted}, got {list(logits.shape)}")
    if num_classes is not None and logits.shape[2] != num_classes:
        raise UserError(f"{logits_name} has {logits.shape[2]} classes, the shadow models {num_classes}")
    if logits.shape[2] < 2 or (len(labels) and labels.max() >= logits.shape[2]):
        raise UserError(f"{logits_name} has {logits.shape[2]} classes, too few for the labels")
    if not np.isfinite(logits).all():
        position = [int(index) for index in np.argwhere(~np.isfinite(logits))[0]]
        raise UserError(f"{logits_name} holds NaN or infinite values (first at {position})")
    if keep.shape != (num_examples,) or not (
        keep.dtype == bool or (keep.dtype.kind in "iu" and np.isin(keep, (0, 1)).all())
    ):
        raise UserError(
            f"{keep_name} must be bool or 0/1 integers [N] = [{num_examples}], got {keep.dtype}{list(keep.shape)}"
        )
    keep = keep.astype(bool)
    if keep.all() or not keep.any():
        raise UserError(
            f"{keep_name} must mark some examples as members and some not, got {int(keep.sum())} of {num_examples}"
        )
    return TargetModel(logits, keep)


def read_target_model(folder: str | Path, run: dict[str, Any]) -> TargetModel:
    """DIR's logits.npy and keep.npy, checked against `run` (a `sources.open_source` result)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"--target-model {folder} is not a directory")
    logits = load_array(folder / "logits.npy", mmap=False)
    keep = load_array(folder / "keep.npy", mmap=False)
    num_classes = None if run["logits"] is None else run["logits"].shape[3]
    views_classes = (scores_shape(run)[2], num_classes)
    names = (f"{folder / 'logits.npy'}", f"{folder / 'keep.npy'}")
    return check_target_model(logits, keep, np.asarray(run["labels"]), views_classes, names)


def appended(array: ExampleArray, row: np.ndarray) -> StackedModels:
    """array [M, N, ...] with row [N, ...] as model M, read lazily."""
    return StackedModels([array, row[None]])


def with_target_model(run: dict[str, Any], folder: str | Path) -> dict[str, Any]:
    """`run` with DIR's model appended as model M (after every row of keep.npy), among its done models: φ
    of the target from its logits where the run has scores.npy, its logits where the run has logits.npy."""
    target = read_target_model(folder, run)
    folder = Path(folder)
    model = run["keep"].shape[0]
    labels = np.asarray(run["labels"])
    files = [folder / "logits.npy", folder / "keep.npy"]
    phi = run["phi"] if run["scores"] is None else f"{run['phi']}; the target's computed from its logits.npy"
    return {
        **run,
        "keep": np.concatenate([run["keep"], target.keep[None]]),
        "scores": None if run["scores"] is None else appended(run["scores"], logit_scale(target.logits, labels)),
        "logits": None if run["logits"] is None else appended(run["logits"], target.logits),
        "models": [*run["models"], model],
        "files": [*run["files"], *files],
        "summary": f"{run['summary']}; --target-model: {', '.join(str(file) for file in files)}",
        "phi": phi,
        "notes": [*run["notes"], f"the target is {folder} (model {model}), every model of the run its shadow"],
    }
