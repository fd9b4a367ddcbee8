"""What an attack reads (`AttackInputs`), and the checks that admit it: made once, at a boundary.

The registry (`lira_jax.audit.registry.check_inputs`) checks everything an attack reads before any is
scored; the public scoring functions (`lira_scores`, `rmia`, `baseline_scores`, `classifier_scores`) check
their own arguments with the same functions. Past those boundaries the internals trust their inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lira_jax.audit.streaming import PASS_LOGITS, ExampleArray, read_examples
from lira_jax.errors import UserError

PROBABILITY_EXAMPLES = 64  # examples at which logits are checked not to be probabilities
EQUALISED = "equalised"
REFERENCE = "reference"
# LiRA's shadow sets: equalised in size (the default), as they are, or truncated as the reference's plot.py does
COUNTS = (EQUALISED, "raw", REFERENCE)


@dataclass(frozen=True)
class NotApplicable:
    """An attack that cannot be scored on these inputs, and why (e.g. too few shadows per example)."""

    reason: str


def applicable(results: dict[str, Any]) -> dict[str, np.ndarray]:
    """{attack: scores} without the attacks that were NotApplicable."""
    return {name: values for name, values in results.items() if not isinstance(values, NotApplicable)}


@dataclass(frozen=True)
class AttackOptions:
    """The attacks' settings: LiRA's centre, RMIA's a and gamma and population (bool[N] or None: every
    example), the attack classifiers' training rows (None: `classifiers.MAX_ROWS`), chunk size (None: by
    memory) and worker threads (None: a few)."""

    lira_centre: str = "median"
    lira_counts: str = EQUALISED
    rmia_a: float = 0.3
    rmia_gamma: float = 1.0
    population: np.ndarray | None = None
    classifier_rows: int | None = None
    chunk_examples: int | None = None
    workers: int | None = None


@dataclass(frozen=True)
class TransferShadow:
    """ML-Leaks adversary 2's shadow: `model` of another run, logits float[M', N', V', C'], keep bool[M', N']."""

    logits: ExampleArray
    keep: np.ndarray
    model: int = 0


@dataclass(frozen=True)
class AttackInputs:
    """Checked inputs of the attacks: scores float[M, N, V], keep bool[M, N], targets int64[T] (positions
    along the model axis), logits float[M, N, V, C] and labels int64[N] (or None), the transfer shadow of
    ML-Leaks adversary 2 (or None) and the options."""

    scores: ExampleArray
    keep: np.ndarray
    targets: np.ndarray
    logits: ExampleArray | None = None
    labels: np.ndarray | None = None
    transfer: TransferShadow | None = None
    options: AttackOptions = field(default_factory=AttackOptions)


def check_scores_keep(scores: Any, keep: Any, targets: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """Validates scores float[M, N, V] against keep bool[M, N]; returns (keep as bool array, targets int64[T]).

    targets: None (every model), or model indices (positions along the model axis), without repeats.
    """
    if getattr(scores, "ndim", None) != 3 or np.dtype(scores.dtype).kind != "f":
        raise UserError(
            f"scores must be floating point [M, N, V], got {getattr(scores, 'dtype', '?')}"
            f"{list(getattr(scores, 'shape', []))}"
        )
    keep = np.asarray(keep)
    if keep.dtype != bool or keep.shape != tuple(scores.shape[:2]):
        raise UserError(
            f"keep must be bool [M, N] = {list(scores.shape[:2])} to match scores, got {keep.dtype}{list(keep.shape)}"
        )
    num_models, num_examples = keep.shape
    if num_examples == 0:
        raise UserError("there are no examples (keep has N = 0)")
    if num_models < 2:
        raise UserError(f"at least 2 models are needed (one target and one shadow), got {num_models}")
    targets = np.arange(num_models) if targets is None else np.asarray(targets).reshape(-1)
    if targets.dtype.kind not in "iu" or len(targets) == 0:
        raise UserError(f"targets must be a non-empty list of model indices, got {targets!r}")
    if targets.min() < 0 or targets.max() >= num_models or len(np.unique(targets)) != len(targets):
        raise UserError(f"targets must be distinct model indices in [0, {num_models}), got {targets.tolist()}")
    return keep, targets.astype(np.int64)


def check_target_rows(keep: np.ndarray, targets: np.ndarray, model_ids: Any = None) -> None:
    """UserError naming the first target model that trained on no example or on every example (keep bool[M, N],
    targets int[T]; model_ids: what to call the rows of keep, default their positions): a target needs
    members and non-members to be attacked at all. An example in no model, or a shadow that is not a
    target with such a row, is ordinary."""
    members = keep[targets].sum(axis=1)
    wrong = np.flatnonzero((members == 0) | (members == keep.shape[1]))
    if len(wrong):
        target = int(targets[wrong[0]])
        name = target if model_ids is None else model_ids[target]
        what = (
            "no example (its keep row is all False)"
            if members[wrong[0]] == 0
            else "every example (its keep row is all True)"
        )
        others = f"; {len(wrong) - 1} more target(s) alike" if len(wrong) > 1 else ""
        raise UserError(
            f"target model {name} trained on {what}: a target needs members and non-members to be attacked{others}"
        )


def check_shadows(keep: np.ndarray, targets: np.ndarray, need_in: bool, need_out: bool, attack: str) -> None:
    """UserError if some example has no IN (need_in) or no OUT (need_out) model besides a target."""
    for wanted, name in ((need_in, "IN"), (need_out, "OUT")):
        if not wanted:
            continue
        in_set = keep if name == "IN" else ~keep
        others = in_set.sum(axis=0)[None, :] - in_set[targets]  # [T, N]: set size without the target
        empty = others == 0
        if empty.any():
            target_index, example = np.argwhere(empty)[0]
            count = int(empty.any(axis=1).sum())
            raise UserError(
                f"{attack} needs an {name} shadow model for every example, but example {example} has none "
                f"besides target {targets[target_index]} ({count} of {len(targets)} targets are affected)"
            )


def check_logits(logits: Any, labels: Any, scores_shape: tuple[int, ...]) -> np.ndarray:
    """Validates logits float[M, N, V, C] (C >= 2) against scores [M, N, V]; returns labels as int64[N]."""
    if (
        getattr(logits, "ndim", None) != 4
        or tuple(logits.shape[:3]) != tuple(scores_shape)
        or np.dtype(logits.dtype).kind != "f"
        or logits.shape[3] < 2
    ):
        raise UserError(
            f"logits must be floating point [M, N, V, C] = {list(scores_shape)} + [C >= 2] to match "
            f"the scores, got {getattr(logits, 'dtype', '?')}{list(getattr(logits, 'shape', []))}"
        )
    if labels is None:
        raise UserError("attacks on logits need the labels")
    labels = np.asarray(labels)
    num_classes = logits.shape[3]
    if labels.shape != (scores_shape[1],) or labels.dtype.kind not in "iu":
        raise UserError(f"labels must be integers [N] = [{scores_shape[1]}], got {labels.dtype}{list(labels.shape)}")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise UserError(
            f"labels must lie in [0, {num_classes}) for logits with {num_classes} classes, "
            f"got {labels.min()}..{labels.max()}"
        )
    refuse_probabilities(logits)
    return labels.astype(np.int64)


def refuse_probabilities(logits: ExampleArray) -> None:
    """UserError if logits float[M, N, V, C] look like probabilities: at PROBABILITY_EXAMPLES examples, every
    value in [0, 1] and every row summing to 1 (the attacks would read p as logits, silently wrong)."""
    sample = read_examples(logits, 0, PROBABILITY_EXAMPLES).astype(np.float64)
    if sample.size == 0 or not np.isfinite(sample).all():
        return  # non-finite values are named where they are read
    if sample.min() >= 0 and sample.max() <= 1 and np.allclose(sample.sum(axis=-1), 1.0, atol=1e-3):
        raise UserError(
            f"the logits look like probabilities (at the first {sample.shape[1]} examples every value lies in "
            f"[0, 1] and every row sums to 1): {PASS_LOGITS}"
        )
