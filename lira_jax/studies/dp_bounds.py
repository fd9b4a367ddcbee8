"""Empirical ε lower bounds from canaries (NumPy/SciPy only): the many-run audit (Jagielski et al. 2020, Nasr et al.
2021) and the one-run audit (Steinke, Nasr, Jagielski, NeurIPS 2023).

Both read canary scores s: float[M, C] (higher: more likely a member) and membership keep: bool[M, C] of M models
and C canaries. Every bound holds at `confidence` under (ε, δ)-DP; none is ever counted on the trials that chose
its threshold or its number of guesses without paying for the choice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import binom

from lira_jax.audit.metrics import clopper_pearson

EPSILON_CEILING = 30.0  # the bisection's upper end: e^30 is past any bound the counts allow


@dataclass(frozen=True)
class BoundOptions:
    """confidence: of each reported bound; delta: the δ the bounds are stated at; seed: of the many-run split
    of the models; guess_counts: the one-run grid of k (k highest-scored canaries guessed in, k lowest out)."""

    confidence: float = 0.95
    delta: float = 1e-5
    seed: int = 0
    guess_counts: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


def epsilon_from_rates(
    false_positives: Any, negatives: Any, false_negatives: Any, positives: Any, confidence: float, delta: float
) -> np.ndarray:
    """max over the two directions of log((1 − δ − FPR_high) / FNR_high), 0 at least: float64[...] elementwise.

    FPR_high and FNR_high are one-sided Clopper-Pearson upper bounds at 1 − (1 − confidence) / 2 each (the upper
    ends of clopper_pearson's two-sided interval), so that both hold at once with probability ≥ confidence.
    """
    _, fpr_high = clopper_pearson(false_positives, negatives, confidence)
    _, fnr_high = clopper_pearson(false_negatives, positives, confidence)
    with np.errstate(divide="ignore", invalid="ignore"):
        forward = np.log(np.maximum(1.0 - delta - fpr_high, 0.0) / fnr_high)
        backward = np.log(np.maximum(1.0 - delta - fnr_high, 0.0) / fpr_high)
    return np.maximum(np.nan_to_num(np.maximum(forward, backward), nan=0.0, neginf=0.0), 0.0)


def _counts_at_thresholds(scores: np.ndarray, membership: np.ndarray) -> tuple[np.ndarray, ...]:
    """(thresholds, FP, FN) of the rule "member when score ≥ threshold" at every distinct score: float64[T]
    and int64[T] twice."""
    order = np.argsort(-scores, kind="stable")
    ordered, members = scores[order], membership[order]
    last_of_ties = np.r_[ordered[1:] != ordered[:-1], True]
    true_positives = np.cumsum(members)[last_of_ties]
    false_positives = np.cumsum(~members)[last_of_ties]
    return ordered[last_of_ties], false_positives, members.sum() - true_positives


def _statistics(scores: np.ndarray, keep: np.ndarray, selection: np.ndarray) -> dict[str, np.ndarray]:
    """The many-run statistics of every (model, canary) trial, fitted on the selection models only: float64[M, C].

    phi: φ minus its mean over the selection models, per canary. lira: LiRA's likelihood ratio with a fixed
    variance (Carlini et al.'s small-M variant), per canary IN and OUT means over the selection models and one σ
    pooled over them: (μ_in − μ_out)(φ − (μ_in + μ_out) / 2) / σ²; 0 for a canary the selection half holds
    only IN or only OUT.
    """
    values = scores.astype(np.float64)
    chosen, members = values[selection], keep[selection]
    num_in, num_out = members.sum(axis=0), (~members).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_in = np.where(members, chosen, 0.0).sum(axis=0) / num_in
        mean_out = np.where(members, 0.0, chosen).sum(axis=0) / num_out
    fitted = (num_in > 0) & (num_out > 0)
    residuals = (chosen - np.where(members, mean_in, mean_out))[:, fitted]
    variance = max(float(residuals.var()) if residuals.size else 0.0, 1e-12)
    ratio = (mean_in - mean_out) * (values - (mean_in + mean_out) / 2) / variance
    return {"phi": values - chosen.mean(axis=0), "lira": np.where(fitted, ratio, 0.0)}


def many_runs(scores: np.ndarray, keep: np.ndarray, options: BoundOptions) -> dict[str, Any]:
    """The many-run bound: trials are (model, canary) pairs, pooled over the canaries.

    The models are split (seeded) into a selection half and a counting half. On the selection half's trials
    alone the statistic (`_statistics`: phi or lira) and the threshold with the largest ε estimate are chosen;
    TP/FP/TN/FN of "member when statistic ≥ threshold" are counted on the counting half's trials only, whose
    Clopper-Pearson bounds give ε. scores: float[M, C]; keep: bool[M, C]; M ≥ 4.
    """
    num_models = scores.shape[0]
    order = np.random.default_rng(options.seed).permutation(num_models)
    selection, counting = np.sort(order[: num_models // 2]), np.sort(order[num_models // 2 :])
    statistics = _statistics(scores, keep, selection)
    selection_members = int(keep[selection].sum())
    best = {"estimate": -1.0}
    for name, values in statistics.items():
        thresholds, false_positives, false_negatives = _counts_at_thresholds(
            values[selection].ravel(), keep[selection].ravel()
        )
        estimates = epsilon_from_rates(
            false_positives, keep[selection].size - selection_members, false_negatives, selection_members,
            options.confidence, options.delta,
        )  # fmt: skip
        if estimates.max() > best["estimate"]:
            best = {
                "estimate": float(estimates.max()),
                "name": name,
                "threshold": float(thresholds[estimates.argmax()]),
            }
    guessed = statistics[best["name"]][counting] >= best["threshold"]
    members = keep[counting]
    positives, negatives = int(members.sum()), int((~members).sum())
    false_positives, false_negatives = int((guessed & ~members).sum()), int((~guessed & members).sum())
    epsilon = float(
        epsilon_from_rates(false_positives, negatives, false_negatives, positives, options.confidence, options.delta)
    )
    return {
        "epsilon": epsilon,
        "confidence": options.confidence,
        "delta": options.delta,
        "statistic": best["name"],
        "selection_models": len(selection),
        "counting_models": len(counting),
        "threshold": best["threshold"],
        "selection_epsilon_estimate": best["estimate"],
        "counts": {
            "true_positives": positives - false_negatives,
            "false_positives": false_positives,
            "true_negatives": negatives - false_positives,
            "false_negatives": false_negatives,
        },
        "seed": options.seed,
    }


def one_run_p_value(epsilon: Any, guesses: Any, correct: Any, delta: float, num_canaries: int) -> np.ndarray:
    """Steinke et al.'s p-value of `correct` right guesses out of `guesses` under (ε, δ)-DP: float64[...].

    δ = 0: P[Binomial(r, e^ε / (1 + e^ε)) ≥ v]. δ > 0 adds 2 m δ · max_{1 ≤ i ≤ v} P[v − i ≤ W < v] / i for
    W ~ Binomial(r, e^ε / (1 + e^ε)) and m canaries (their Theorem for approximate DP, as in their appendix's code).
    """
    epsilon, guesses, correct = np.broadcast_arrays(*(np.asarray(a, np.float64) for a in (epsilon, guesses, correct)))
    accuracy = 1.0 / (1.0 + np.exp(-epsilon))
    tail = binom.sf(correct - 1, guesses, accuracy)
    if delta == 0:
        return np.minimum(tail, 1.0)
    longest = int(correct.max(initial=0))
    steps = np.arange(1, longest + 1)  # i
    below = binom.pmf(correct[..., None] - steps, guesses[..., None], accuracy[..., None])  # P[W = v − i]
    windows = np.cumsum(below, axis=-1) / steps  # P[v − i ≤ W < v] / i
    windows = np.where(steps <= correct[..., None], windows, 0.0)
    return np.minimum(tail + 2 * num_canaries * delta * windows.max(axis=-1, initial=0.0), 1.0)


def one_run_epsilon(guesses: Any, correct: Any, beta: float, delta: float, num_canaries: int) -> np.ndarray:
    """The largest ε whose p-value for `correct` of `guesses` is below β (bisection, to 1e-6): float64[...];
    0 where even ε = 0 is not rejected."""
    guesses, correct = np.broadcast_arrays(np.asarray(guesses, np.float64), np.asarray(correct, np.float64))
    low, high = np.zeros(guesses.shape), np.full(guesses.shape, EPSILON_CEILING)
    rejected_at_zero = one_run_p_value(low, guesses, correct, delta, num_canaries) < beta
    for _ in range(math.ceil(math.log2(EPSILON_CEILING / 1e-6))):
        middle = (low + high) / 2
        below = one_run_p_value(middle, guesses, correct, delta, num_canaries) < beta
        low, high = np.where(below, middle, low), np.where(below, high, middle)
    return np.where(rejected_at_zero, low, 0.0)


def one_run_guesses(scores: np.ndarray, keep: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Right guesses v[M, K] when each model guesses its k highest-scored canaries in and its k lowest out, for
    each k in counts (2k ≤ C): int64[M, K]. scores: float[M, C]; keep: bool[M, C]."""
    ranked = np.take_along_axis(keep, np.argsort(-scores, axis=1, kind="stable"), axis=1)
    top = np.cumsum(ranked, axis=1)
    bottom = np.cumsum(~ranked[:, ::-1], axis=1)
    return top[:, counts - 1] + bottom[:, counts - 1]


def one_run(scores: np.ndarray, keep: np.ndarray, options: BoundOptions) -> dict[str, Any]:
    """Steinke et al.'s bound for each model on its own scores (no other model is read: with a balanced keep
    matrix the other models' rows would tell which canaries this one holds), maximised over the k of
    options.guess_counts with 2k ≤ C at a Bonferroni share β / K of β = 1 − confidence; combined: the largest
    per-model bound recomputed at β / (M K), so that it too holds at `confidence`.
    scores: float[M, C]; keep: bool[M, C].
    """
    num_models, num_canaries = scores.shape
    counts = np.array([k for k in options.guess_counts if 2 * k <= num_canaries], dtype=np.int64)
    beta = 1.0 - options.confidence
    correct = one_run_guesses(scores, keep, counts)
    guesses = np.broadcast_to(2 * counts, correct.shape)
    per_model = one_run_epsilon(guesses, correct, beta / len(counts), options.delta, num_canaries)
    combined = one_run_epsilon(guesses, correct, beta / (len(counts) * num_models), options.delta, num_canaries)
    best = np.unravel_index(np.argmax(combined), combined.shape)
    return {
        "epsilon": float(combined[best]),
        "confidence": options.confidence,
        "delta": options.delta,
        "combined": "max over models and k at confidence 1 − β / (M K) each (Bonferroni)",
        "best_model_position": int(best[0]),
        "best_guesses": int(guesses[best]),
        "best_correct": int(correct[best]),
        "guess_counts": counts.tolist(),
        "per_model": per_model.max(axis=1).tolist(),
        "per_model_confidence": f"each at {options.confidence} (max over k at β / K each)",
    }
