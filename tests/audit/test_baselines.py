"""lira_jax.audit.attacks.baselines: RMIA and the baselines against plain loops over targets and examples."""

import numpy as np
import pytest
from rmia_reference import dropped_out_shadow, log_ratio, naive_rmia
from scipy.special import expit, softmax
from scipy.stats import spearmanr

from lira_jax.audit.attacks.baselines import FROM_LOGITS, FROM_SCORES, baseline_scores
from lira_jax.audit.attacks.rmia import rmia
from lira_jax.audit.inputs.phi import logit_scale
from lira_jax.audit.metrics import attack_metrics
from lira_jax.errors import UserError


def random_logit_run(seed, num_models=8, num_examples=30, num_views=2, num_classes=5):
    rng = np.random.default_rng(seed)
    keep = np.argsort(rng.random((num_models, num_examples)), axis=0) < num_models // 2
    labels = rng.integers(0, num_classes, num_examples)
    logits = rng.normal(0, 2, size=(num_models, num_examples, num_views, num_classes))
    logits[:, np.arange(num_examples), :, labels] += 1.5 * keep.T[:, :, None]
    logits = logits.astype(np.float32)
    return keep, labels, logits, logit_scale(logits, labels)


@pytest.mark.parametrize("online", [True, False])
def test_rmia_matches_loop(online):
    """The whole score, tie-break included, against the loops of tests/audit/rmia_reference.py; and on these
    untied ratios floor(score · |Z|) / |Z| is the paper's fraction over Z, the population without x. (Before
    issue 25 this compared only the floor, with a loop whose offline OUT set kept every shadow.)"""
    keep, labels, logits, scores = random_logit_run(0)
    p = expit(scores.astype(np.float64)).mean(axis=-1)
    population = np.arange(0, 30, 2)
    for gamma, chosen in [(1.0, None), (1.3, population)]:
        result = rmia(scores, keep, None, online=online, gamma=gamma, population=chosen, chunk_examples=7)
        assert result.dtype == np.float32 and result.shape == (8, 30)
        for target in range(8):
            np.testing.assert_allclose(
                result[target], naive_rmia(scores, keep, target, online, gamma=gamma, population=chosen), atol=1e-6
            )
            ratios = np.exp([log_ratio(p, keep, target, n, online, 0.3) for n in range(30)])
            zs = [z for z in (range(30) if chosen is None else chosen) if not keep[target, z]]
            fraction = [np.mean([ratios[x] / ratios[z] >= gamma for z in zs if z != x]) for x in range(30)]
            size = np.array([len(zs) - (x in zs) for x in range(30)])
            np.testing.assert_allclose(np.floor(result[target].astype(np.float64) * size + 1e-6) / size, fraction)


def test_rmia_breaks_ties_by_the_likelihood_ratio():
    """Within a target no two examples tie, and the score orders examples as the ratio p_t(x) / Pr(x) does
    up to neighbours (each x's own ratio is left out of its population)."""
    keep, labels, logits, scores = random_logit_run(2, num_examples=60)
    result = rmia(scores, keep, [0], online=True)[0]
    p = expit(scores.astype(np.float64)).mean(axis=-1)
    ratio = p[0] / p[1:].mean(axis=0)
    assert len(np.unique(result)) == len(result)
    assert spearmanr(result, ratio).statistic > 0.999
    assert result.min() >= 0.0 and result.max() < 1.0 + 1.0 / (np.sum(~keep[0]) - 1)  # a step above 1 at most


def test_rmia_null_control_at_the_lowest_fpr():
    """No signal: members and non-members are exchangeable, so even below 1 / |Z| TPR stays near FPR."""
    rng = np.random.default_rng(0)
    keep = np.argsort(rng.random((32, 1000)), axis=0) < 16
    scores = (rng.normal(2, 1.5, (32, 1000, 1)) + rng.normal(0, 1, (1, 1000, 1))).astype(np.float32)
    metrics = attack_metrics(keep, rmia(scores, keep, online=True))
    assert abs(metrics["auc"] - 0.5) < 0.01
    assert metrics["tpr_at_fpr"]["0.0001"] < 0.0005  # the member-only top that leaving x in produced: ~0.2%


def test_rmia_bad_input():
    keep, labels, logits, scores = random_logit_run(1)
    with pytest.raises(UserError, match="population"):
        rmia(scores, keep, population=np.ones(5, dtype=bool))
    with pytest.raises(UserError, match="a <= 1"):
        rmia(scores, keep, online=False, a=1.5)
    keep[:, 4] = True
    with pytest.raises(UserError, match="OUT shadow"):
        rmia(scores, keep, online=False)


def naive_baselines(scores, keep, labels, logits, target):
    """{name: float64[N]} for one target, with probabilities formed directly (fine at these scales)."""
    num_models, num_examples, num_views, num_classes = logits.shape
    out = {name: np.zeros(num_examples) for name in FROM_SCORES + FROM_LOGITS}
    for n in range(num_examples):
        y = labels[n]
        for v in range(num_views):
            p = softmax(logits[target, n, v].astype(np.float64))
            log_p_y = np.log(p[y])
            shadow_log_p = [
                np.log(softmax(logits[m, n, v].astype(np.float64))[y])
                for m in range(num_models)
                if m not in (target, dropped_out_shadow(keep, target, n)) and not keep[m, n]
            ]  # the equalised OUT set, as offline RMIA's (issue 25; before, every OUT shadow)
            mentr = -(1 - p[y]) * np.log(p[y]) - sum(p[j] * np.log(1 - p[j]) for j in range(num_classes) if j != y)
            values = {
                "loss": log_p_y,
                "calibrated_loss": log_p_y - np.mean(shadow_log_p),
                "global_threshold": float(scores[target, n, v]),
                "confidence": p.max(),
                "entropy": np.sum(p * np.log(p)),
                "modified_entropy": -mentr,
                "correctness": float(np.argmax(p) == y),
            }
            for name, value in values.items():
                out[name][n] += value / num_views
    return out


def test_baselines_match_loop():
    keep, labels, logits, scores = random_logit_run(2)
    targets = [0, 5, 6]
    results = baseline_scores(
        scores, keep, targets, FROM_SCORES + FROM_LOGITS, logits=logits, labels=labels, chunk_examples=4, workers=2
    )
    assert list(results) == list(FROM_SCORES + FROM_LOGITS)
    for row, target in enumerate(targets):
        expected = naive_baselines(scores, keep, labels, logits, target)
        for name, values in results.items():
            assert values.dtype == np.float32 and values.shape == (3, 30)
            np.testing.assert_allclose(values[row], expected[name], rtol=2e-5, atol=2e-6, err_msg=name)


def test_logit_baselines_stay_finite_for_extreme_logits():
    logits = np.zeros((2, 3, 1, 3), dtype=np.float32)
    logits[0, 0, 0] = [1e4, -1e4, 0]
    logits[1, 1, 0] = [-1e4, 1e4, 0]  # confidently wrong: p_j = 1 for j != y
    logits[0, 2, 0] = [0, 0, 1e4]
    labels = np.array([0, 0, 0])
    keep = np.array([[True, False, True], [False, True, False]])
    scores = logit_scale(logits, labels)
    results = baseline_scores(scores, keep, None, FROM_LOGITS + ("loss",), logits=logits, labels=labels)
    for name, values in results.items():
        assert np.isfinite(values).all(), name
    assert results["modified_entropy"][1, 1] < -1e3 < results["modified_entropy"][0, 0]


def test_logit_baselines_need_logits():
    keep, labels, logits, scores = random_logit_run(3)
    with pytest.raises(UserError, match="entropy need the full logits"):
        baseline_scores(scores, keep, names=["loss", "entropy"])
    with pytest.raises(UserError, match="labels must lie"):
        baseline_scores(scores, keep, names=["entropy"], logits=logits, labels=labels + 5)
    with pytest.raises(UserError, match="logits must be"):
        baseline_scores(scores, keep, names=["entropy"], logits=logits[:, :, :1], labels=labels)
    broken = logits.copy()
    broken[3, 9, 0, 2] = np.nan
    with pytest.raises(UserError, match=r"logits holds NaN.*example 9"):
        baseline_scores(scores, keep, names=["confidence"], logits=broken, labels=labels)
    with pytest.raises(UserError, match="unknown baseline"):
        baseline_scores(scores, keep, names=["loss", "vibes"])
