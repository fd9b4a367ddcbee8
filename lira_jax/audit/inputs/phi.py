"""Logit scaling in NumPy: φ = z_y − logsumexp_{j≠y} z_j, exact to float32 for any finite logits.

φ beyond float32's range (|φ| > 3.4e38, from float64 logits of that size) is clipped to it: such an example's
label probability is 0 or 1 in any float format, and its order among the others is kept.

`lira_jax.shadow.phi` is the jittable twin the trainer uses; tests/test_scoring.py checks they agree.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lira_jax.audit.streaming import (
    ExampleArray,
    MappedExamples,
    check_finite,
    not_finite_hint,
    read_examples,
    within_float32,
)
from lira_jax.errors import UserError

PIECE_BYTES = 4 << 20  # logit_scale computes about this much float64 at a time
CHECKED_EXAMPLES = 16  # examples at which a trained run's scores.npy is checked against its logits.npy,
CHECKED_BLOCKS = 4  # in this many runs of consecutive examples


def _aligned_labels(labels: Any, logits_shape: tuple[int, ...]) -> np.ndarray:
    """Labels shaped to broadcast against logits_shape[:-1] (see `logit_scale`)."""
    labels = np.asarray(labels)
    leading = len(logits_shape) - 1
    if leading == 2 and labels.ndim == 1 and logits_shape[0] == logits_shape[1] == labels.shape[0] > 1:
        raise UserError(
            f"logits {list(logits_shape)} with labels [{labels.shape[0]}] are ambiguous: pass labels[None, :] "
            f"for logits [M, N, C], or labels[:, None] for logits [N, V, C]"
        )
    if labels.ndim < leading:  # one label per example of the layout [..., N, V, C]: add the view axis
        labels = labels[..., None]
    try:
        np.broadcast_shapes(labels.shape, logits_shape[:-1])
    except ValueError:
        hint = " (logits [M, N, C]: pass labels[None, :])" if leading == 2 and labels.ndim == 2 else ""
        raise UserError(f"labels of shape {labels.shape} do not match logits of shape {logits_shape}{hint}") from None
    return labels


def logit_scale(logits: Any, labels: Any) -> Any:
    """φ = z_y − logsumexp_{j≠y} z_j (= log p_y − log(1 − p_y)), without forming probabilities.

    logits: float16|float32|float64[..., C] (NumPy, memmap, anything np.asarray takes). labels: int; with
    fewer axes than logits.shape[:-1] they first get a trailing view axis (the run-folder layout [..., N, V, C]), then
    broadcast by NumPy's rules: logits [M, N, V, C] or [N, V, C] with labels [N], logits [N, C] with
    labels [N]. For other layouts shape them to broadcast (logits [M, N, C]: labels[None, :]); logits
    [A, A, C] with labels [A] could be either layout and are refused.
    Returns float32[logits.shape[:-1]] as NumPy (`lira_jax.shadow.phi` is the jittable twin).
    Exact to float32 rounding for any finite logits (|z| up to 1e4 and beyond): NumPy input (a
    memmap too) is computed in float64 a piece of about PIECE_BYTES at a time.
    """
    logits = np.asarray(logits)
    if logits.dtype.kind != "f" or logits.ndim < 1 or logits.shape[-1] < 2:
        raise UserError(f"logits must be floating point [..., C] with C >= 2, got {logits.dtype}{list(logits.shape)}")
    labels = _aligned_labels(labels, logits.shape)
    if labels.dtype.kind not in "iu":
        raise UserError(f"labels must be integers, got {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= logits.shape[-1]):
        raise UserError(f"labels must lie in [0, {logits.shape[-1]}), got {labels.min()}..{labels.max()}")
    out = np.empty(logits.shape[:-1], dtype=np.float32)
    _logit_scale_into(out, logits, labels)
    return out


def _logit_scale_into(out: np.ndarray, logits: np.ndarray, labels: np.ndarray) -> None:
    """out[...] = φ in pieces of about PIECE_BYTES of float64, splitting leading axes as far as needed."""
    if logits.ndim == 1 or logits.size * 8 <= PIECE_BYTES:
        out[...] = _phi(_finite_float64(logits), labels)
        return
    labels_per_row = labels.ndim == logits.ndim - 1 and labels.shape[0] != 1
    rows = PIECE_BYTES // (logits[0].size * 8)
    if rows == 0 and logits.ndim > 2:  # one row is too big: split it
        has_axis = labels.ndim == logits.ndim - 1  # labels have this axis too (maybe of size 1)
        for row in range(logits.shape[0]):
            _logit_scale_into(out[row], logits[row], labels[row if labels_per_row else 0] if has_axis else labels)
        return
    rows = max(rows, 1)
    for start in range(0, logits.shape[0], rows):
        chunk_labels = labels[start : start + rows] if labels_per_row else labels
        out[start : start + rows] = _phi(_finite_float64(logits[start : start + rows]), chunk_labels)


def _finite_float64(logits: np.ndarray) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float64)
    if not np.isfinite(logits).all():
        index = tuple(int(i) for i in np.argwhere(~np.isfinite(logits))[0])
        hint = not_finite_hint("logits", logits[index])
        raise UserError(f"logits hold NaN or infinite values ({logits[index]} at {list(index)}){hint}")
    return logits


def _phi(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    labels = np.broadcast_to(labels, logits.shape[:-1])[..., None]
    true = np.take_along_axis(logits, labels, axis=-1)[..., 0]
    others = logits.copy()
    np.put_along_axis(others, labels, -np.inf, axis=-1)
    top = others.max(axis=-1, keepdims=True)
    with np.errstate(over="ignore", invalid="ignore"):  # float64 logits near its limit: clipped just below
        phi = (true - top[..., 0]) - np.log(np.exp(others - top).sum(axis=-1))
    return within_float32(phi)


def streamed_phi(logits: ExampleArray, labels: np.ndarray) -> MappedExamples:
    """φ float32[M, N, V] of logits float[M, N, V, C] (labels int[N]), computed chunk by chunk as the attacks
    read it: never held whole, never written anywhere."""

    def phi(chunk: np.ndarray, start: int, stop: int) -> np.ndarray:
        check_finite(chunk, "logits", start)  # named by position, with what to pass instead
        return logit_scale(chunk, labels[start:stop])

    return MappedExamples(logits, phi, logits.shape[:3], np.float32)


def check_scores(scores: ExampleArray, logits: ExampleArray, labels: np.ndarray, folder: Any) -> str:
    """UserError unless scores float32[M, N, V] are φ of logits float[M, N, V, C] (labels int[N]) at
    CHECKED_EXAMPLES examples (CHECKED_BLOCKS runs of consecutive ones spread over N, every model and view,
    so that few reads cover them), to the rounding of the logits' dtype (a trained run's scores come from
    its logits before they were stored). Returns what was checked, for metrics.json. folder: where the two
    files lie, for the message."""
    num_examples = scores.shape[1]
    length = num_examples if num_examples <= CHECKED_EXAMPLES else CHECKED_EXAMPLES // CHECKED_BLOCKS
    starts = np.unique(np.linspace(0, num_examples - length, CHECKED_BLOCKS).astype(np.int64))
    for start in map(int, starts):
        values = read_examples(logits, start, start + length)
        check_finite(values, "logits", start, logits)
        saved = read_examples(scores, start, start + length).astype(np.float64)
        recomputed = logit_scale(values, labels[start : start + length]).astype(np.float64)
        size = np.abs(values.astype(np.float64)).max(axis=-1)
        tolerance = 4 * np.finfo(values.dtype).eps * (size + 1) + 1e-5 * (1 + np.abs(recomputed))
        wrong = np.abs(saved - recomputed) > tolerance
        if wrong.any():
            model, position, view = np.argwhere(wrong)[0]
            raise UserError(
                f"{folder}: scores.npy is not φ of logits.npy ({int(wrong.sum())} of {wrong.size} values differ"
                f" at examples {start}..{start + length - 1}; model {model}, example {start + position}, view"
                f" {view}: {saved[model, position, view]:.6g} against {recomputed[model, position, view]:.6g}):"
                " one of them was changed after training; refusing to guess which is right"
            )
    checked = min(num_examples, len(starts) * length)
    return f"scores.npy, checked against logits.npy at {checked} of {num_examples} examples"
