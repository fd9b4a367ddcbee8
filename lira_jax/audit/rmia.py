"""RMIA (Zarifzadeh et al., ICML 2024), streamed over examples like LiRA (`lira_jax.audit.lira`).

Scores φ: float32[M, N, V]; keep: bool[M, N]; returns float32[T, N] for T targets (model indices), higher =
more likely a member. A probability is taken per view (σ(φ)) and averaged over views.

The likelihood ratios are kept as logarithms, and sums over shadow models are taken without subtracting the
target's own term (prefix and suffix sums), so that extreme but finite φ (a model confidently wrong by
hundreds, float64 logits of 1e38) never turn into 0 / 0: a chunk of examples where a probability falls
below TINY_PROBABILITY is computed in log space throughout.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.special import expit, logsumexp

from lira_jax.audit.inputs import AttackInputs, check_scores_keep, check_shadows
from lira_jax.audit.streaming import ExampleArray, check_finite, map_example_chunks
from lira_jax.errors import UserError

RMIA_ATTACKS = ("rmia_online", "rmia_offline")
TINY_PROBABILITY = 1e-290  # below this, a chunk's probabilities are taken in log space


def rmia(
    scores: ExampleArray,
    keep: np.ndarray,
    targets: Sequence[int] | None = None,
    *,
    online: bool = True,
    a: float = 0.3,
    gamma: float = 1.0,
    population: np.ndarray | None = None,
    chunk_examples: int | None = None,
    workers: int | None = None,
) -> np.ndarray:
    """RMIA: the fraction of population examples z ≠ x with LR(x, z) ≥ gamma, as float32[T, N], plus a
    tie-break below one step of the fraction (_fraction): scores lie in [0, 1 + 1 / |Z|).

    LR(x, z) = [p_t(x) / Pr(x)] / [p_t(z) / Pr(z)], p_m(x) = softmax probability of x's label under
    model m, averaged over views (σ(φ), so scores suffice). Pr(x) over the shadow models m ≠ t:
    online, the mean of p_m(x) over all of them (IN and OUT: with a balanced keep matrix about half
    each); offline, from the OUT models only with the paper's linear approximation of the IN side,
    Pr(x) = ((1 + a) · mean_OUT p_m(x) + (1 − a)) / 2. The same Pr applies to z.
    population: bool[N] or example indices (default: every example); for target t the population is
    that set minus t's training members, so z are always examples t did not see (the paper's z are
    population data outside the target's training set).
    """
    keep, targets = check_scores_keep(scores, keep, targets)
    if not online:
        check_shadows(keep, targets, need_in=False, need_out=True, attack="offline RMIA")
    if not 0.0 <= a <= 1.0 or not gamma > 0:
        raise UserError(f"RMIA needs 0 <= a <= 1 and gamma > 0, got a={a}, gamma={gamma}")
    in_population = population_mask(population, scores.shape[1])
    return _rmia(scores, keep, targets, online, a, gamma, in_population, chunk_examples, workers)


def rmia_family(inputs: AttackInputs, names: Sequence[str]) -> dict[str, np.ndarray]:
    """The registry's RMIA: {name: float32[T, N]} for rmia_online and rmia_offline, with the options' a,
    gamma and population (checked: bool[N] or None, every example)."""
    options = inputs.options
    num_examples = inputs.keep.shape[1]
    population = np.ones(num_examples, dtype=bool) if options.population is None else options.population
    return {
        name: _rmia(
            inputs.scores,
            inputs.keep,
            inputs.targets,
            name == "rmia_online",
            options.rmia_a,
            options.rmia_gamma,
            population,
            options.chunk_examples,
            options.workers,
        )
        for name in names
    }


def _rmia(
    scores: ExampleArray,
    keep: np.ndarray,
    targets: np.ndarray,
    online: bool,
    a: float,
    gamma: float,
    in_population: np.ndarray,
    chunk_examples: int | None,
    workers: int | None,
) -> np.ndarray:
    """`rmia` on checked inputs: keep bool[M, N], targets int64[T], in_population bool[N]."""
    num_models, num_examples, num_views = scores.shape

    def work(start: int, stop: int, values: np.ndarray) -> np.ndarray:
        check_finite(values, "scores", start, scores)
        is_out = None if online else ~keep[:, start:stop]
        probability = expit(values.astype(np.float64)).mean(axis=-1)  # [M, n]
        if probability.min() >= TINY_PROBABILITY:
            return _log_ratios(probability, targets, is_out, a, log_space=False)
        log_p = -np.logaddexp(0.0, -values.astype(np.float64))  # log σ(φ), exact for any finite φ
        return _log_ratios(logsumexp(log_p, axis=-1) - np.log(num_views), targets, is_out, a, log_space=True)

    log_ratios = np.concatenate(
        map_example_chunks(work, [scores], num_examples, 24 * num_models * num_views, chunk_examples, workers), axis=1
    )  # [T, N]
    result = np.empty((len(targets), num_examples), dtype=np.float32)
    for row, target in enumerate(targets):
        population_indices = np.flatnonzero(in_population & ~keep[target])
        if len(population_indices) < 2:
            raise UserError(f"RMIA needs 2 population examples outside target {target}'s training set")
        order = np.argsort(log_ratios[row, population_indices], kind="stable")
        own = np.full(num_examples, -1)
        own[population_indices[order]] = np.arange(len(order))
        # LR(x, z) >= gamma  <=>  log ratio_z <= log ratio_x − log gamma
        result[row] = _fraction(log_ratios[row, population_indices[order]], log_ratios[row] - np.log(gamma), own)
    return result


def _log_ratios(
    probability: np.ndarray, targets: np.ndarray, is_out: np.ndarray | None, a: float, log_space: bool
) -> np.ndarray:
    """log [p_t(x) / Pr(x)] as float64[T, n], from each model's probability of x's label [M, n] (or its log,
    log_space): Pr(x) online the mean over the models other than t, offline ((1 + a) · the mean over the OUT
    models other than t + (1 − a)) / 2 (is_out: bool[M, n])."""
    counted = np.ones(probability.shape, dtype=bool) if is_out is None else is_out
    count = counted.sum(axis=0) - counted[targets]  # [T, n]: shadows besides the target
    if log_space:
        kept = np.where(counted, probability, -np.inf)
        mean = _without_targets(kept, targets, np.logaddexp, -np.inf) - np.log(count)
        own = probability[targets]
        if is_out is not None:
            with np.errstate(divide="ignore"):  # a = 1: no constant term
                mean = np.logaddexp(np.log1p(a) + mean, np.log1p(-a)) - np.log(2.0)
        return own - mean
    mean = _without_targets(probability * counted, targets, np.add, 0.0) / count
    if is_out is not None:
        mean = ((1 + a) * mean + (1 - a)) / 2
    return np.log(probability[targets]) - np.log(mean)


def _without_targets(values: np.ndarray, targets: np.ndarray, combine: np.ufunc, empty: float) -> np.ndarray:
    """[T, n]: values [M, n] combined (np.add, or np.logaddexp for logs) over every model but each target,
    from prefix and suffix accumulations: exact where subtracting the target's own term would cancel."""
    filler = np.full((1, values.shape[1]), empty)
    before = np.concatenate([filler, combine.accumulate(values[:-1], axis=0)])  # before[m]: models < m
    after = np.concatenate([combine.accumulate(values[:0:-1], axis=0)[::-1], filler])  # after[m]: models > m
    return combine(before[targets], after[targets])


def _fraction(reference_logs: np.ndarray, value: np.ndarray, own: np.ndarray) -> np.ndarray:
    """float64[N]: the fraction of population log ratios <= value[x] (LR(x, z) >= gamma), x itself left out
    of its own population, plus where x lies between its two neighbouring population ratios (in log space).

    reference_logs: log ratios float64[K] sorted; value: log ratio_x − log gamma, float64[N]; own: int[N],
    x's index in reference_logs or -1. Why the position: the paper's fraction has a resolution of 1 / K; on digits the
    examples beyond the largest ratio tie at 1.0 and alone exceed 0.1% of the non-members, so TPR at 0.1%
    FPR read 0. The position (in [0, 0.999]) breaks ties by RMIA's own statistic without reordering two
    examples the fraction tells apart: floor(score * size) / size is the fraction. Why x is left out: a
    non-member is one of the population, so it could never pass the largest population ratio while a
    member could, which put members alone at the top even when membership carries no signal.
    """
    is_own = own >= 0
    logs = reference_logs
    below = np.searchsorted(logs, value, side="right")
    below = below - (is_own & (logs[np.maximum(own, 0)] <= value))
    size = len(logs) - is_own

    def log_ratio_at(position: np.ndarray) -> np.ndarray:  # the position-th ratio once x's own is removed
        return logs[position + (is_own & (position >= own))]

    lower = log_ratio_at(np.maximum(below - 1, 0))
    upper = log_ratio_at(np.minimum(below, size - 1))
    gap = upper - lower
    inside = np.divide(value - lower, gap, out=np.zeros_like(gap), where=gap > 0)  # equal neighbours: a tie
    with np.errstate(over="ignore"):  # the branch np.where does not take may overflow; the one it takes cannot
        position = np.where(
            below == 0,
            np.exp(value - log_ratio_at(np.zeros_like(below))),
            np.where(below == size, 1 - np.exp(log_ratio_at(size - 1) - value), inside),
        )
    return (below + np.clip(position, 0.0, 0.999)) / size


def population_mask(population: Any, num_examples: int) -> np.ndarray:
    """RMIA's population as bool[N]: from a bool mask, example indices or None (every example)."""
    if population is None:
        return np.ones(num_examples, dtype=bool)
    population = np.asarray(population)
    if population.dtype == bool:
        if population.shape != (num_examples,):
            raise UserError(f"population mask must be bool [{num_examples}], got {list(population.shape)}")
        return population
    if (
        population.dtype.kind not in "iu"
        or population.ndim != 1
        or (len(population) and (population.min() < 0 or population.max() >= num_examples))
    ):
        raise UserError(f"population must be a bool mask or example indices in [0, {num_examples})")
    mask = np.zeros(num_examples, dtype=bool)
    mask[population] = True
    return mask
