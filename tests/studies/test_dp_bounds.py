"""The ε lower bounds of lira_jax.studies.dp_bounds against plain implementations, under the null and on
perfect separation."""

import math

import numpy as np
import pytest
from scipy.stats import beta as beta_distribution
from scipy.stats import binom

from lira_jax.studies.dp_bounds import (
    BoundOptions,
    epsilon_from_rates,
    many_runs,
    one_run,
    one_run_epsilon,
    one_run_guesses,
    one_run_p_value,
)


def plain_upper(failures, trials, confidence):
    """The one-sided Clopper-Pearson upper bound at 1 − (1 − confidence) / 2, from the beta quantile."""
    tail = (1 - confidence) / 2
    return 1.0 if failures == trials else beta_distribution.ppf(1 - tail, failures + 1, trials - failures)


def test_epsilon_from_rates_matches_the_formula():
    for fp, negatives, fn, positives in [(3, 100, 10, 120), (0, 50, 25, 50), (40, 40, 0, 40)]:
        fpr, fnr = plain_upper(fp, negatives, 0.95), plain_upper(fn, positives, 0.95)
        plain = max(
            0.0,
            *(math.log(max(1 - 1e-5 - a, 0) / b) if 1 - 1e-5 - a > 0 else 0.0 for a, b in ((fpr, fnr), (fnr, fpr))),
        )
        assert epsilon_from_rates(fp, negatives, fn, positives, 0.95, 1e-5) == pytest.approx(plain, abs=1e-9)


def test_one_run_p_value_matches_a_plain_loop():
    def plain(epsilon, r, v, delta, m):
        q = 1 / (1 + math.exp(-epsilon))
        windows = [sum(binom.pmf(v - j, r, q) for j in range(1, i + 1)) / i for i in range(1, v + 1)]
        return min(binom.sf(v - 1, r, q) + 2 * m * delta * max(windows, default=0.0), 1.0)

    for epsilon, r, v, delta in [(0.5, 20, 15, 0.0), (1.0, 30, 25, 1e-3), (2.0, 10, 10, 1e-5), (0.1, 8, 0, 1e-2)]:
        assert one_run_p_value(epsilon, r, v, delta, 40) == pytest.approx(plain(epsilon, r, v, delta, 40), rel=1e-9)


def test_one_run_epsilon_is_where_the_p_value_crosses_beta():
    epsilon = float(one_run_epsilon(100, 90, 0.05, 0.0, 200))
    p_values = one_run_p_value([epsilon - 1e-4, epsilon + 1e-4], 100, 90, 0.0, 200)
    assert p_values[0] < 0.05 <= p_values[1]
    assert float(one_run_epsilon(100, 50, 0.05, 0.0, 200)) == 0.0  # chance accuracy rejects nothing
    # all r right at δ = 0: the p-value is q^r, so ε = log(q / (1 − q)) with q = β^(1/r)
    q = 0.05 ** (1 / 64)
    assert float(one_run_epsilon(64, 64, 0.05, 0.0, 64)) == pytest.approx(math.log(q / (1 - q)), abs=1e-5)


def test_one_run_guesses_counts_top_and_bottom():
    scores = np.array([[5.0, 4, 3, 2, 1, 0]])
    keep = np.array([[True, False, True, False, False, True]])
    # k=1: 0 in (right), 5 out (wrong); k=2: adds 1 in (wrong), 4 out (right); k=3: adds 2 in, 3 out (both right)
    assert one_run_guesses(scores, keep, np.array([1, 2, 3])).tolist() == [[1, 2, 4]]


def null_arrays(seed, num_models=64, num_canaries=64):
    rng = np.random.default_rng(seed)
    keep = np.argsort(rng.random((num_models, num_canaries)), axis=0) < num_models // 2
    return rng.normal(size=(num_models, num_canaries)), keep


def test_null_scores_give_no_bound_over_seeds():
    """Pure noise: the true ε is 0, so a bound above 0 is a false alarm; at 95% at most a few seeds in 40 may
    give one (the choice of threshold on other trials must not inflate that)."""
    false_alarms = {"many": 0, "one": 0}
    for seed in range(40):
        scores, keep = null_arrays(seed)
        options = BoundOptions(seed=seed, delta=0.0)
        false_alarms["many"] += many_runs(scores, keep, options)["epsilon"] > 0
        false_alarms["one"] += one_run(scores, keep, options)["epsilon"] > 0
    assert false_alarms["many"] <= 2 and false_alarms["one"] <= 2, false_alarms  # 0 and 0 when written


def test_counting_on_the_selection_trials_would_be_optimistic():
    """Pure noise at 50% confidence, few canaries: the ε estimate on the trials that chose the threshold is above
    the true 0 far more often than the 50% a valid bound allows; the counting half's bound is not."""
    above = np.zeros(2, dtype=int)
    for seed in range(40):
        scores, keep = null_arrays(seed, num_canaries=8)
        result = many_runs(scores, keep, BoundOptions(seed=seed, delta=0.0, confidence=0.5))
        above += [result["epsilon"] > 0, result["selection_epsilon_estimate"] > 0]
    assert above[0] <= 10 < 25 <= above[1], above


def test_perfect_separation_reaches_what_the_counts_allow():
    scores, keep = null_arrays(0)
    scores = scores + 100 * keep
    options = BoundOptions(delta=0.0)
    result = many_runs(scores, keep, options)
    counts = result["counts"]
    assert counts["false_positives"] == counts["false_negatives"] == 0
    fpr, fnr = plain_upper(0, counts["true_negatives"], 0.95), plain_upper(0, counts["true_positives"], 0.95)
    expected = max(math.log((1 - fpr) / fnr), math.log((1 - fnr) / fpr))
    assert result["epsilon"] == pytest.approx(expected, rel=1e-9)
    single = one_run(scores, keep, options)
    assert single["best_correct"] == single["best_guesses"] == 64
    q = (0.05 / (len(single["guess_counts"]) * 64)) ** (1 / 64)
    assert single["epsilon"] == pytest.approx(math.log(q / (1 - q)), abs=1e-5)


def test_lira_statistic_follows_each_canarys_own_direction():
    """Half the canaries gain φ as members, half lose it: centred φ cannot pool them, LiRA's per-canary ratio
    can, and it is chosen on the selection half."""
    scores, keep = null_arrays(1)
    direction = np.where(np.arange(64) % 2 == 0, 1.0, -1.0)
    scores = scores + 6 * keep * direction
    result = many_runs(scores, keep, BoundOptions(delta=0.0))
    assert result["statistic"] == "lira" and result["epsilon"] > 4
    counts = result["counts"]
    assert counts["false_positives"] + counts["false_negatives"] <= 2
