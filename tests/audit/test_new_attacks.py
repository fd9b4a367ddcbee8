"""bavaria_t, bavaria_n, base and label_only: each equal to a plain loop over targets and examples, at
chance under the null, and not applicable (with the reason) where its inputs are too small; precision at
a member prior in metrics.json."""

import math

import numpy as np
import pytest
from scipy import stats
from scipy.optimize import brentq
from scipy.special import digamma, logsumexp, polygamma

from lira_jax.audit.attacks.bavaria import _fit_prior
from lira_jax.audit.attacks.equalise import out_removals
from lira_jax.audit.inputs.checked import NotApplicable
from lira_jax.audit.metrics import attack_metrics, auc, roc_curve
from lira_jax.audit.precision import precision_at_fpr
from lira_jax.audit.registry import score_attacks
from lira_jax.shadow.data import make_keep


def small_run(seed: int = 0, num_models: int = 8, num_examples: int = 30, num_views: int = 2):
    """(keep, scores, logits, labels): every example in 3 to 5 of 8 models (so raw sets hold >= 2 shadows),
    per-example noise scales that differ (a finite prior), a membership signal."""
    rng = np.random.default_rng(seed)
    counts = rng.integers(3, num_models - 2, num_examples)
    keep = np.argsort(rng.random((num_models, num_examples)), axis=0) < counts
    noise = np.exp(rng.normal(0, 0.8, size=(1, num_examples, 1)))
    difficulty = rng.normal(0, 2, size=(1, num_examples, 1))
    shape = (num_models, num_examples, num_views)
    scores = (difficulty + 0.7 * keep[..., None] + noise * rng.normal(size=shape)).astype(np.float32)
    logits = rng.normal(size=(*shape, 3)).astype(np.float32)
    labels = rng.integers(0, 3, num_examples)
    logits += 1.5 * keep[..., None, None] * np.eye(3, dtype=np.float32)[labels][None, :, None, :]
    return keep, scores, logits, labels


def plain_prior(sets: list[np.ndarray]) -> tuple[float, float]:
    """(d0, s0²) of one side and view from its sets (one array of shadow scores per example), as limma."""
    centred, trigammas = [], []
    for values in sets:
        dof = len(values) - 1
        if dof >= 1:
            centred.append(math.log(max(values.var(ddof=1), 1e-12)) - digamma(dof / 2) + math.log(dof / 2))
            trigammas.append(polygamma(1, dof / 2))
    excess = np.var(centred, ddof=1) - np.mean(trigammas)
    if excess <= 0:
        return math.inf, math.exp(np.mean(centred))
    half = brentq(lambda x: polygamma(1, x) - excess, 1e-10, 1e10, xtol=1e-14)
    return 2 * half, math.exp(np.mean(centred) + digamma(half) - math.log(half))


def plain_bavaria(scores: np.ndarray, keep: np.ndarray, online: bool) -> np.ndarray:
    """BaVarIA with raw counts, one target, example and view at a time (docs/auditing.md, "BaVarIA")."""
    num_models, num_examples, num_views = scores.shape
    result = np.zeros((num_models, num_examples))
    for target in range(num_models):
        sides = {}
        for member in (True, False) if online else (False,):
            sets = [
                scores[[m for m in range(num_models) if m != target and keep[m, n] == member], n].astype(np.float64)
                for n in range(num_examples)
            ]
            sides[member] = sets, [plain_prior([values[:, v] for values in sets]) for v in range(num_views)]
        for n in range(num_examples):
            for v in range(num_views):
                log_density = {}
                for member, (sets, priors) in sides.items():
                    values, (prior_df, prior_variance) = sets[n][:, v], priors[v]
                    size, mean = len(values), values.mean()
                    squares = ((values - mean) ** 2).sum()
                    moderated = prior_variance
                    if math.isfinite(prior_df):
                        moderated = (prior_df * prior_variance + squares) / (prior_df + size - 1)
                    scale = math.sqrt(max(moderated * (1 + 1 / size), 1e-12))
                    phi = float(scores[target, n, v])
                    if not online:
                        log_density[member] = stats.norm.logcdf((phi - mean) / scale)
                    elif math.isfinite(prior_df):
                        log_density[member] = stats.t.logpdf(phi, prior_df + size - 1, mean, scale)
                    else:
                        log_density[member] = stats.norm.logpdf(phi, mean, scale)
                ratio = log_density[True] - log_density[False] if online else log_density[False]
                result[target, n] += ratio / num_views
    return result


@pytest.mark.parametrize("seed", [0, 1])
def test_bavaria_equals_a_plain_loop(seed):
    keep, scores, _, _ = small_run(seed)
    results = score_attacks(scores, keep, None, ["bavaria_t", "bavaria_n"], lira_counts="raw")
    np.testing.assert_allclose(results["bavaria_t"], plain_bavaria(scores, keep, online=True), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(results["bavaria_n"], plain_bavaria(scores, keep, online=False), rtol=1e-5, atol=1e-5)
    assert auc(roc_curve(keep, results["bavaria_t"])) > 0.6


def test_bavaria_prior_without_excess_spread_is_lira_fixed_variance():
    """Log variances that vary less than sampling alone would: d0 = ∞, s0² = exp(mean e)."""
    count, total, squares, trigammas = (np.array([[value]]) for value in (10.0, 5.0, 2.5, 10.0))
    prior_df, prior_variance = _fit_prior(count, total, squares, trigammas)
    assert np.isinf(prior_df).all() and prior_variance[0, 0] == pytest.approx(math.exp(0.5))


@pytest.mark.parametrize("extreme", [False, True])
def test_base_equals_a_plain_loop(extreme):
    """Also where shadows' probabilities underflow (φ of ±800: taken in log space)."""
    keep, scores, _, _ = small_run(2)
    if extreme:
        scores[:, ::3] *= 400
    base = score_attacks(scores, keep, None, ["base"])["base"]
    num_models, num_examples, num_views = scores.shape
    expected = np.zeros((num_models, num_examples))
    for target in range(num_models):
        for n in range(num_examples):
            for v in range(num_views):
                log_p = -np.logaddexp(0, -scores[:, n, v].astype(np.float64))
                others = logsumexp([log_p[m] for m in range(num_models) if m != target]) - math.log(num_models - 1)
                expected[target, n] += (log_p[target] - others) / num_views
    np.testing.assert_allclose(base, expected, rtol=1e-5, atol=1e-6)


def test_label_only_equals_a_plain_loop():
    keep, scores, logits, labels = small_run(3, num_views=4)
    label_only = score_attacks(scores, keep, None, ["label_only"], logits=logits, labels=labels)["label_only"]
    num_models, num_examples = keep.shape
    right = np.zeros((num_models, num_examples))
    for m in range(num_models):
        for n in range(num_examples):
            right[m, n] = np.mean([logits[m, n, v].argmax() == labels[n] for v in range(4)])
    # calibrated_loss's equalised OUT set: the shadow `out_removals` drops (its choice is tested in test_equalise)
    first, second = out_removals(keep, np.arange(num_models), 0)
    expected = np.zeros((num_models, num_examples))
    for target in range(num_models):
        for n in range(num_examples):
            left_out = {target, first[target, n], second[target, n]}
            out = [right[m, n] for m in range(num_models) if m not in left_out and not keep[m, n]]
            expected[target, n] = right[target, n] - np.mean(out)
    np.testing.assert_allclose(label_only, expected, rtol=0, atol=1e-6)
    assert auc(roc_curve(keep, label_only)) > 0.6


def test_label_only_null_control():
    """Logits independent of membership: AUC 0.5 ± 0.01 at 16 x 4,000 (target, example) pairs (SE ~0.003)."""
    rng = np.random.default_rng(5)
    keep = make_keep(16, 4000, seed=5, mode="balanced")
    logits = (rng.normal(size=(16, 4000, 4, 3)) + rng.normal(0, 2, size=(1, 4000, 1, 3))).astype(np.float32)
    scores = logits[..., 0] - np.log(np.exp(logits[..., 1:]).sum(axis=-1))
    values = score_attacks(scores, keep, None, ["label_only"], logits=logits, labels=np.zeros(4000, np.int64))
    assert auc(roc_curve(keep, values["label_only"])) == pytest.approx(0.5, abs=0.01)


def test_identical_scores_tie_every_new_attack_at_chance():
    """No signal at all: every model's scores (and logits) equal per example, so every score ties."""
    rng = np.random.default_rng(6)
    keep = make_keep(16, 200, seed=6, mode="balanced")
    logits = np.broadcast_to(rng.normal(size=(1, 200, 2, 3)), (16, 200, 2, 3)).astype(np.float32)
    scores = logits[..., 0] - np.log(np.exp(logits[..., 1:]).sum(axis=-1))
    names = ["bavaria_t", "bavaria_n", "base", "label_only"]
    results = score_attacks(scores, keep, None, names, logits=logits, labels=np.zeros(200, np.int64))
    for name, values in results.items():
        assert np.isfinite(values).all() and auc(roc_curve(keep, values)) == 0.5, name


def test_not_applicable_rules():
    keep, scores, logits, labels = small_run(4, num_views=1)
    # M = 4, balanced, equalised: every set holds one shadow, so no variance to fit the prior from
    four = make_keep(4, 30, seed=4, mode="balanced")
    results = score_attacks(scores[:4], four, None, ["bavaria_t", "bavaria_n"])
    reason = NotApplicable("needs ≥ 3 examples with ≥ 2 shadows per set to fit the prior")
    assert results == {"bavaria_t": reason, "bavaria_n": reason}
    # an example no model but target 0 trained on: bavaria_t has no IN shadow there, bavaria_n still runs
    lonely = keep.copy()
    lonely[:, 0] = False
    lonely[0, 0] = True
    results = score_attacks(scores, lonely, None, ["bavaria_t", "bavaria_n"])
    assert results["bavaria_t"] == NotApplicable("needs ≥ 1 IN and 1 OUT shadows per example")
    assert results["bavaria_n"].shape == keep.shape
    single = score_attacks(scores, keep, None, ["label_only"], logits=logits, labels=labels)["label_only"]
    assert single == NotApplicable("needs ≥ 2 query views (augmentations); the run has 1")


def test_precision_at_a_member_prior():
    at_fpr = {"0.01": {"tpr": 0.2, "fpr": 0.01}, "0.001": {"tpr": 0.05, "fpr": 0.0}, "0.0001": None}
    precision = precision_at_fpr(at_fpr)
    assert precision["0.01"]["0.01"] == pytest.approx(0.01 * 0.2 / (0.01 * 0.2 + 0.99 * 0.01))
    assert precision["0.01"]["0.1"] == pytest.approx(0.1 * 0.2 / (0.1 * 0.2 + 0.9 * 0.01))
    assert precision["0.001"] == {"0.01": 1.0, "0.1": 1.0} and precision["0.0001"] is None
    assert precision_at_fpr({"0.01": {"tpr": 0.0, "fpr": 0.0}}) == {"0.01": {"0.01": None, "0.1": None}}
    membership = np.arange(2000) < 1000
    metrics = attack_metrics(membership, np.where(membership, 1.0, 0.0) + np.arange(2000) * 1e-4)
    assert metrics["precision_at_fpr"] == precision_at_fpr(metrics["at_fpr"])
    assert metrics["precision_at_fpr"]["1e-05"] is None  # 1,000 non-members: not measurable
