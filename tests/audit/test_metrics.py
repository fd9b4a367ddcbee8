"""lira_jax.audit.metrics: the ROC and every metric against scikit-learn, SciPy and brute force."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import beta
from sklearn.metrics import auc as sklearn_auc
from sklearn.metrics import roc_curve as sklearn_roc_curve

from lira_jax.audit.metrics import (
    FPR_LEVELS,
    attack_metrics,
    auc,
    balanced_accuracy,
    clopper_pearson,
    epsilon_lower_bound,
    roc_curve,
    tpr_at_fpr,
)
from lira_jax.errors import UserError


def random_attack(seed, size, decimals=None, dtype=np.float32):
    rng = np.random.default_rng(seed)
    membership = rng.random(size) < 0.5
    membership[:2] = [True, False]
    scores = rng.normal(size=size) + 0.8 * membership
    if decimals is not None:
        scores = np.round(scores, decimals)  # ties
    return membership, scores.astype(dtype)


@pytest.mark.parametrize("seed, size, decimals", [(0, 50, None), (1, 400, 1), (2, 1000, 0), (3, 3, None)])
def test_roc_and_auc_match_sklearn(seed, size, decimals):
    membership, scores = random_attack(seed, size, decimals)
    roc = roc_curve(membership, scores)
    fpr, tpr, thresholds = sklearn_roc_curve(membership, scores, drop_intermediate=False)
    np.testing.assert_allclose(roc.fpr, fpr)
    np.testing.assert_allclose(roc.tpr, tpr)
    np.testing.assert_array_equal(roc.thresholds[1:], thresholds[1:])
    assert len(np.unique(scores)) + 1 == len(roc.thresholds)  # one point per distinct score
    assert auc(roc) == pytest.approx(sklearn_auc(fpr, tpr), abs=1e-12)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int64])
def test_roc_counts_by_brute_force_in_every_dtype(dtype):
    """float16/32 go through the packed one-sort path, the others through the merge: the same ROC."""
    membership, scores = random_attack(5, 700, decimals=0 if dtype == np.int64 else 1, dtype=np.float64)
    scores = (scores * (3 if dtype == np.int64 else 1)).astype(dtype)
    if dtype != np.int64:
        scores[:40] = np.where(np.arange(40) % 2, 0.0, -0.0)  # signed zeros tie
        scores[40:60] = -np.abs(scores[40:60]) - 7  # negative scores too
    roc = roc_curve(membership, scores)
    distinct = np.unique(scores)[::-1]  # -0.0 and 0.0 are one score
    np.testing.assert_array_equal(roc.thresholds[1:], distinct.astype(np.float64))
    np.testing.assert_array_equal(roc.true_positives[1:], [(scores[membership] >= t).sum() for t in distinct])
    np.testing.assert_array_equal(roc.false_positives[1:], [(scores[~membership] >= t).sum() for t in distinct])


def test_metrics_by_brute_force():
    membership, scores = random_attack(4, 300, decimals=1)
    roc = roc_curve(membership, scores)
    members, nonmembers = membership.sum(), (~membership).sum()
    candidates = np.concatenate([np.unique(scores), [np.inf]])
    tpr = np.array([(scores[membership] >= t).sum() / members for t in candidates])
    fpr = np.array([(scores[~membership] >= t).sum() / nonmembers for t in candidates])
    assert balanced_accuracy(roc) == pytest.approx(np.max(1 - (fpr + 1 - tpr) / 2))
    for alpha in (0.01, 0.05, 0.2, 1.0):
        assert tpr_at_fpr(roc, alpha) == pytest.approx(tpr[fpr <= alpha].max())
    assert tpr_at_fpr(roc, 0.5 / nonmembers) is None  # below one false positive: not measurable

    metrics = attack_metrics(membership, scores, fpr_levels=(0.05, 1e-5), delta=1e-3)
    assert metrics["tpr_at_fpr"]["1e-05"] is None and metrics["at_fpr"]["1e-05"] is None
    point = metrics["at_fpr"]["0.05"]
    assert point["tpr"] == pytest.approx(tpr[fpr <= 0.05].max()) == metrics["tpr_at_fpr"]["0.05"]
    tp, fp = point["true_positives"], point["false_positives"]
    assert point["tpr_interval"][0] == pytest.approx(beta.ppf(0.025, tp, members - tp + 1))
    assert point["tpr_interval"][1] == pytest.approx(beta.ppf(0.975, tp + 1, members - tp))
    assert point["fpr_interval"][1] == pytest.approx(beta.ppf(0.975, fp + 1, nonmembers - fp))
    assert point["epsilon_lower_bound"] == pytest.approx(
        max(0.0, math.log((point["tpr_interval"][0] - 1e-3) / point["fpr_interval"][1]))
    )
    accuracy = (tpr * members + (1 - fpr) * nonmembers) / len(scores)
    best = metrics["best_accuracy"]
    assert best["accuracy"] == pytest.approx(accuracy.max())
    predicted = scores >= best["threshold"]
    assert best["precision"] == pytest.approx((predicted & membership).sum() / predicted.sum())
    assert best["recall"] == pytest.approx((predicted & membership).sum() / members)


def test_clopper_pearson_edges_and_epsilon():
    low, high = clopper_pearson([0, 10, 10], [10, 10, 20])
    assert low[0] == 0 and high[1] == 1
    assert high[0] == pytest.approx(1 - 0.025 ** (1 / 10))
    assert low[2] == pytest.approx(beta.ppf(0.025, 10, 11))
    assert epsilon_lower_bound(0.5, 0.01, 1e-5) == pytest.approx(math.log((0.5 - 1e-5) / 0.01))
    assert epsilon_lower_bound(1e-6, 0.01, 1e-5) == 0.0
    assert epsilon_lower_bound(0.005, 0.01, 1e-5) == 0.0


def test_metrics_json_shape():
    membership, scores = random_attack(5, 2000)
    metrics = attack_metrics(membership, scores)
    assert set(metrics["tpr_at_fpr"]) == {"0.01", "0.001", "0.0001", "1e-05"} == {str(a) for a in FPR_LEVELS}
    assert 0.5 < metrics["auc"] < 1 and 0.5 < metrics["balanced_accuracy"] < 1
    assert metrics["tpr_at_fpr"]["0.0001"] is None  # about 1000 non-members: 1e-4 is not measurable
    assert metrics["num_members"] + metrics["num_nonmembers"] == 2000


@pytest.mark.parametrize(
    "membership, scores, message",
    [
        (np.array([True, False]), np.array([1.0, 2.0, 3.0]), "differ in shape"),
        (np.array([1, 0]), np.array([1.0, 2.0]), "must be bool"),
        (np.array([True, False]), np.array([1.0, np.nan]), "NaN"),
        (np.array([True, True]), np.array([1.0, 2.0]), "members and non-members"),
    ],
)
def test_bad_input(membership, scores, message):
    with pytest.raises(UserError, match=message):
        roc_curve(membership, scores)


@st.composite
def scores_and_membership(draw):
    """Tied integer scores (float64[K]) and a random membership (bool[K]) with at least one of each."""
    scores = np.array(draw(st.lists(st.integers(-20, 20), min_size=2, max_size=60)), dtype=np.float64)
    membership = np.random.default_rng(draw(st.integers(0, 2**31 - 1))).random(len(scores)) < 0.5
    membership[:2] = [True, False]
    return scores, membership


@settings(max_examples=60, deadline=None)
@given(scores_and_membership())
def test_strictly_increasing_transforms_change_nothing(drawn):
    scores, membership = drawn
    reference = attack_metrics(membership, scores, fpr_levels=(0.1, 0.5))
    for transform in (lambda x: np.exp(x / 4), lambda x: x**3 + 7 * x, lambda x: 1000 * x - 3):
        transformed = attack_metrics(membership, transform(scores), fpr_levels=(0.1, 0.5))
        for key in ("auc", "balanced_accuracy", "tpr_at_fpr", "at_fpr"):
            assert transformed[key] == reference[key]


@settings(max_examples=60, deadline=None)
@given(scores_and_membership())
def test_swapping_members_and_nonmembers_mirrors_the_roc(drawn):
    scores, membership = drawn
    roc = roc_curve(membership, scores)
    swapped = roc_curve(~membership, scores)
    np.testing.assert_allclose(swapped.tpr, roc.fpr)
    np.testing.assert_allclose(swapped.fpr, roc.tpr)
    assert auc(swapped) == pytest.approx(1 - auc(roc))
    flipped = roc_curve(~membership, -scores)  # swapping and reversing the scores: the same curve, mirrored
    np.testing.assert_allclose(np.sort(1 - flipped.tpr), np.sort(roc.fpr))
    assert auc(flipped) == pytest.approx(auc(roc))
