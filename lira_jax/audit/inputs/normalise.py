"""Logits, keep and labels as people have them, checked once and put in our layout.

Accepted: NumPy arrays, memmaps (kept lazy: nothing is read here but keep and labels), anything `np.asarray`
takes, and CPU PyTorch tensors (read through `.detach().numpy()`, without importing torch). Layout after
`normalise`: logits float16|float32|float64[M, N, V, C], keep bool[M, N], labels int64[N].
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lira_jax.audit.inputs.arguments import as_numpy, indices
from lira_jax.errors import UserError


@dataclass(frozen=True)
class NormalisedInputs:
    """logits: float[M, N, V, C] (a view of the caller's array where possible); keep: bool[M, N]; labels: int64[N]."""

    logits: np.ndarray
    keep: np.ndarray
    labels: np.ndarray


def normalise_logits(logits: Any, views: Sequence[int] | None = None) -> np.ndarray:
    """logits float16|32|64 [M, N, C] (one view) or [M, N, V, C] as [M, N, V, C]; views: the views to keep."""
    logits = as_numpy(logits, "logits")
    if logits.dtype.kind != "f" or logits.dtype.itemsize not in (2, 4, 8):
        raise UserError(f"logits must be float16, float32 or float64, got {logits.dtype}")
    if logits.ndim == 3:
        logits = logits[:, :, None, :]
    if logits.ndim != 4:
        raise UserError(
            f"logits must be [M, N, C] or [M, N, V, C] (models, examples, views, classes), got {list(logits.shape)}"
        )
    num_models, num_examples, num_views, num_classes = logits.shape
    if num_models < 2 or num_examples < 1 or num_classes < 2:
        raise UserError(f"logits {list(logits.shape)} need M >= 2 models, N >= 1 examples and C >= 2 classes")
    if views is not None:
        chosen = indices(views, "views", num_views, "view indices")
        if chosen != list(range(num_views)):
            logits = logits[:, :, chosen]
    return logits


def normalise_keep(keep: Any, num_models: int, num_examples: int) -> np.ndarray:
    """keep bool or 0/1 integers [M, N] as bool[M, N]; a transposed matrix is named as such."""
    keep = as_numpy(keep, "keep")
    if keep.shape != (num_models, num_examples):
        hint = " (transposed? pass keep.T)" if keep.shape == (num_examples, num_models) else ""
        raise UserError(
            f"keep must be [M, N] = [{num_models}, {num_examples}] like the logits, got {list(keep.shape)}{hint}"
        )
    if keep.dtype == bool:
        return np.asarray(keep)
    if keep.dtype.kind not in "iu" or not np.isin(keep, (0, 1)).all():
        raise UserError(f"keep must be bool or 0/1 integers, got {keep.dtype} with values {np.unique(keep)[:5]}")
    return np.asarray(keep, dtype=bool)


def normalise_labels(labels: Any, num_examples: int, num_classes: int) -> np.ndarray:
    """labels of any integer dtype [N] (or [N, 1]), each in [0, C), as int64[N]."""
    labels = as_numpy(labels, "labels")
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.shape != (num_examples,):
        raise UserError(f"labels must be [N] = [{num_examples}] like the logits, got {list(labels.shape)}")
    if labels.dtype.kind not in "iu":
        raise UserError(f"labels must be integers (class indices, not one-hot or probabilities), got {labels.dtype}")
    if num_examples and (labels.min() < 0 or labels.max() >= num_classes):
        raise UserError(f"labels must lie in [0, {num_classes}), got {labels.min()}..{labels.max()}")
    return np.asarray(labels, dtype=np.int64)


def normalise(logits: Any, keep: Any, labels: Any, views: Sequence[int] | None = None) -> NormalisedInputs:
    """The three inputs of `lira_jax.audit_logits`, checked against each other once (finiteness is checked
    while the logits are streamed)."""
    _refuse_swapped_logits(as_numpy(logits, "logits").shape, np.shape(as_numpy(keep, "keep")), np.shape(labels))
    logits = normalise_logits(logits, views)
    num_models, num_examples, _, num_classes = logits.shape
    keep = normalise_keep(keep, num_models, num_examples)
    labels = normalise_labels(labels, num_examples, num_classes)
    return NormalisedInputs(logits=logits, keep=keep, labels=labels)


def _refuse_swapped_logits(logits: tuple[int, ...], keep: tuple[int, ...], labels: tuple[int, ...]) -> None:
    """UserError if logits are [N, M, ...] (examples before models) where keep is [M, N] and labels [N]: the
    advice is to transpose the logits, not keep."""
    shapes_fit = len(logits) in (3, 4) and len(keep) == 2 and len(labels) >= 1 and logits[0] != logits[1]
    if shapes_fit and tuple(logits[:2]) == tuple(keep[::-1]) and labels[0] == logits[0]:
        order = ", ".join(map(str, (1, 0, *range(2, len(logits)))))
        axes = "models, examples, views, classes" if len(logits) == 4 else "models, examples, classes"
        raise UserError(
            f"logits {list(logits)} have the examples first, but keep is [M, N] = {list(keep)} and labels "
            f"[N] = [{labels[0]}]: pass logits.transpose({order}) ({axes})"
        )
