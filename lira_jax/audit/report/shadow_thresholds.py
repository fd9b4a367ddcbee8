"""The threshold attacks' decisions at thresholds chosen on shadow models only.

A threshold attack (loss, confidence, ...) flags an example as a member when its score reaches a
threshold. Picking that threshold on the target's own labels would report a decision the attacker could
not make. Here each target's threshold is the one that maximises balanced accuracy over the *other*
targets' (model, example) pairs, which stand for shadow models: the attacker trained them, so it knows
their members. That threshold is then applied to the target's scores, and the decisions are pooled over
targets.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lira_jax.audit.attacks.baselines import FROM_LOGITS, FROM_SCORES
from lira_jax.audit.metrics import decision_metrics

# Attacks that decide by a threshold on their score. correctness already decides (labelled right => member).
THRESHOLD_ATTACKS = tuple(name for name in (*FROM_SCORES, *FROM_LOGITS) if name != "correctness")
GRID = 1024  # candidate thresholds: quantiles of the pooled scores


def shadow_thresholds(membership: np.ndarray, values: np.ndarray, grid: int = GRID) -> np.ndarray:
    """float[T]: each target t's threshold τ_t, the one of `grid` quantiles of all scores (values float32[T, N])
    that maximises balanced accuracy of "score >= τ" over the rows other than t (membership bool[T, N];
    ties: the lowest). Row t's own labels are never read for τ_t. Needs T >= 2."""
    num_targets = values.shape[0]
    candidates = np.unique(np.quantile(values, np.linspace(0, 1, grid)))
    members = np.zeros((num_targets, len(candidates)), dtype=np.int64)  # per row: members flagged at each τ
    flagged = np.zeros_like(members)  # per row: examples flagged at each τ
    for row in range(num_targets):
        ordered = np.sort(values[row])
        ordered_members = np.sort(values[row][membership[row]])
        flagged[row] = len(ordered) - np.searchsorted(ordered, candidates, side="left")
        members[row] = len(ordered_members) - np.searchsorted(ordered_members, candidates, side="left")
    nonmembers = flagged - members
    positives = membership.sum(axis=1)[:, None]
    negatives = (~membership).sum(axis=1)[:, None]
    # Each target's counts are the totals less its own row.
    true_rate = (members.sum(axis=0) - members) / (positives.sum() - positives)
    false_rate = (nonmembers.sum(axis=0) - nonmembers) / (negatives.sum() - negatives)
    return candidates[np.argmax(true_rate - false_rate, axis=1)]


def shadow_threshold_decisions(membership: np.ndarray, values: np.ndarray, grid: int = GRID) -> dict[str, Any] | None:
    """decision_metrics of the targets' scores values float32[T, N] against membership bool[T, N], target t
    flagging score >= τ_t (`shadow_thresholds`), pooled over targets; None with fewer than 2 targets (no
    other row to choose from). Adds "threshold_from": "other targets", and the thresholds' median, min, max.
    """
    if values.shape[0] < 2:
        return None
    thresholds = shadow_thresholds(membership, values, grid)
    decisions = decision_metrics(membership, values >= thresholds[:, None])
    return {
        "threshold_from": "other targets",
        "threshold_median": float(np.median(thresholds)),
        "threshold_min": float(thresholds.min()),
        "threshold_max": float(thresholds.max()),
        **decisions,
    }
