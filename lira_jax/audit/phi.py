"""Logit scaling in NumPy: φ = z_y − logsumexp_{j≠y} z_j, exact to float32 for any finite logits.

`lira_jax.shadow.phi` is the jittable twin the trainer uses; tests/test_scoring.py checks they agree.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lira_jax.audit.streaming import ExampleArray, MappedExamples
from lira_jax.errors import UserError

PIECE_BYTES = 4 << 20  # logit_scale computes about this much float64 at a time


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
        raise UserError("logits hold NaN or infinite values")
    return logits


def _phi(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    labels = np.broadcast_to(labels, logits.shape[:-1])[..., None]
    true = np.take_along_axis(logits, labels, axis=-1)[..., 0]
    others = logits.copy()
    np.put_along_axis(others, labels, -np.inf, axis=-1)
    top = others.max(axis=-1, keepdims=True)
    return (true - top[..., 0]) - np.log(np.exp(others - top).sum(axis=-1))


def streamed_phi(logits: ExampleArray, labels: np.ndarray) -> MappedExamples:
    """φ float32[M, N, V] of logits float[M, N, V, C] (labels int[N]), computed chunk by chunk as the attacks
    read it: never held whole, never written anywhere."""
    return MappedExamples(
        logits, lambda chunk, start, stop: logit_scale(chunk, labels[start:stop]), logits.shape[:3], np.float32
    )
