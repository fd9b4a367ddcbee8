"""The threshold attacks' decisions at thresholds chosen on the other targets (shadows), never the target's labels."""

import numpy as np
import pytest

from lira_jax import audit_logits
from lira_jax.audit.metrics import decision_metrics
from lira_jax.audit.report.shadow_thresholds import shadow_threshold_decisions, shadow_thresholds
from lira_jax.shadow.data import make_keep


def plain_decisions(membership: np.ndarray, values: np.ndarray, grid: int) -> dict:
    """Each target's threshold by trying every candidate on the other rows, one at a time."""
    candidates = np.unique(np.quantile(values, np.linspace(0, 1, grid)))
    predicted = np.zeros_like(membership)
    for target in range(len(values)):
        others = np.arange(len(values)) != target
        best, best_score = None, -np.inf
        for threshold in candidates:
            flagged = values[others] >= threshold
            member = membership[others]
            score = flagged[member].mean() - flagged[~member].mean()
            if score > best_score:
                best, best_score = threshold, score
        predicted[target] = values[target] >= best
    return decision_metrics(membership, predicted)


@pytest.mark.parametrize("ties", [False, True])
def test_equals_the_plain_search(ties):
    rng = np.random.default_rng(int(ties))
    keep = make_keep(6, 300, seed=2, mode="balanced")
    values = rng.normal(size=keep.shape) + 0.8 * keep
    if ties:
        values = np.round(values, 1)
    got = shadow_threshold_decisions(keep, values.astype(np.float32), grid=64)
    expected = plain_decisions(keep, values.astype(np.float32), grid=64)
    assert {key: got[key] for key in expected} == expected
    assert got["threshold_from"] == "other targets" and got["threshold_min"] <= got["threshold_median"]


def test_the_target_s_own_labels_are_never_read():
    rng = np.random.default_rng(3)
    keep = make_keep(8, 400, seed=3, mode="balanced")
    values = (rng.normal(size=keep.shape) + keep).astype(np.float32)
    flipped = keep.copy()
    flipped[0] = ~flipped[0]  # target 0's labels changed: its own threshold must not move
    assert shadow_thresholds(flipped, values)[0] == shadow_thresholds(keep, values)[0]
    assert shadow_thresholds(flipped, values)[1] != shadow_thresholds(keep, values)[1]  # it is target 1's shadow


def test_no_signal_decides_at_chance():
    rng = np.random.default_rng(4)
    keep = make_keep(16, 4000, seed=4, mode="balanced")
    values = rng.normal(size=keep.shape).astype(np.float32)
    decisions = shadow_threshold_decisions(keep, values)
    assert decisions["balanced_accuracy"] == pytest.approx(0.5, abs=0.01)


def test_one_target_has_no_shadow_threshold():
    keep = make_keep(4, 50, seed=0, mode="balanced")
    assert shadow_threshold_decisions(keep[:1], np.zeros((1, 50), np.float32)) is None


def test_metrics_json_carries_them_for_the_threshold_attacks():
    rng = np.random.default_rng(5)
    keep = make_keep(8, 200, seed=5, mode="balanced")
    logits = rng.normal(size=(8, 200, 3)).astype(np.float32)
    logits[..., 0] += 2 * keep
    attacks = audit_logits(logits, keep, np.zeros(200, np.int64), attacks=["loss", "confidence", "rmia_online"])
    records = attacks.metrics["attacks"]
    assert "at_shadow_threshold" in records["loss"] and "at_shadow_threshold" in records["confidence"]
    assert "at_shadow_threshold" not in records["rmia_online"]
    assert records["loss"]["at_shadow_threshold"]["balanced_accuracy"] <= records["loss"]["balanced_accuracy"]
