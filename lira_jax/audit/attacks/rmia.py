"""RMIA (Zarifzadeh et al., ICML 2024), streamed over examples like LiRA (`lira_jax.audit.attacks.lira.lira`).

Scores φ: float32[M, N, V]; keep: bool[M, N]; returns float32[T, N] for T targets (model indices), higher =
more likely a member. A probability is taken per view (σ(φ)) and averaged over views.

The likelihood ratios are kept as logarithms, and sums over shadow models are taken without subtracting the
target's own term or a dropped shadow's (prefix and suffix sums, blocks between), so that extreme but finite
φ (a model confidently wrong by hundreds, float64 logits of 1e38) never turn into 0 / 0: a chunk of examples
where a probability falls below TINY_PROBABILITY is computed in log space throughout.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.special import expit, logsumexp

from lira_jax.audit.attacks.equalise import out_removals, out_shortfall
from lira_jax.audit.attacks.leave_out import combine_without, snap
from lira_jax.audit.inputs.checked import AttackInputs, NotApplicable, check_scores_keep
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
    """RMIA: the fraction of population examples z with LR(x, z) ≥ gamma, as float32[T, N], plus a
    tie-break below one step of the fraction (`_fraction`): scores lie in [0, 1 + 1 / |Z|).

    LR(x, z) = [p_t(x) / Pr(x)] / [p_t(z) / Pr(z)], p_m(x) = softmax probability of x's label under
    model m, averaged over views (σ(φ), so scores suffice). Pr(x) over the shadow models m ≠ t:
    online, the mean of p_m(x) over all of them (IN and OUT: with a balanced keep matrix about half
    each); offline, from the OUT models only with the paper's linear approximation of the IN side,
    Pr(x) = ((1 + a) · mean_OUT p_m(x) + (1 − a)) / 2, over LiRA's equalised OUT set (`out_removals`:
    one OUT shadow dropped where the OUT side is the larger). The same Pr applies to z.
    population: bool[N] or example indices (default: every example); for target t the population is
    that set minus t's training members, so z are always examples t did not see (the paper's z are
    population data outside the target's training set). The tie rule: the population points whose ratio
    equals x's (LR(x, z) = 1, x itself among them) are left out of x's comparison, for members and
    non-members alike, so that members and non-members are exchangeable under the null.
    """
    keep, targets = check_scores_keep(scores, keep, targets)
    if not 0.0 <= a <= 1.0 or not gamma > 0:
        raise UserError(f"RMIA needs 0 <= a <= 1 and gamma > 0, got a={a}, gamma={gamma}")
    in_population = population_mask(population, scores.shape[1])
    reason = shortfall(keep, targets, online, in_population)
    if reason is not None:
        raise UserError(f"{'online' if online else 'offline'} RMIA {reason}")
    return _rmia(scores, keep, targets, online, a, gamma, in_population, chunk_examples, workers)


def rmia_family(inputs: AttackInputs, names: Sequence[str]) -> dict[str, np.ndarray | NotApplicable]:
    """The registry's RMIA: {name: float32[T, N]} for rmia_online and rmia_offline, with the options' a,
    gamma and population (checked: bool[N] or None, every example); NotApplicable where `shortfall` says."""
    options = inputs.options
    num_examples = inputs.keep.shape[1]
    population = np.ones(num_examples, dtype=bool) if options.population is None else options.population
    results: dict[str, np.ndarray | NotApplicable] = {}
    for name in names:
        online = name == "rmia_online"
        reason = shortfall(inputs.keep, inputs.targets, online, population)
        if reason is not None:
            results[name] = NotApplicable(reason)
            continue
        results[name] = _rmia(
            inputs.scores,
            inputs.keep,
            inputs.targets,
            online,
            options.rmia_a,
            options.rmia_gamma,
            population,
            options.chunk_examples,
            options.workers,
        )
    return results


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
    """`rmia` on checked inputs (keep bool[M, N], targets int64[T], in_population bool[N]) whose sets are
    large enough (`shortfall` is None)."""
    num_models, num_examples, num_views = scores.shape

    def work(start: int, stop: int, values: np.ndarray) -> np.ndarray:
        check_finite(values, "scores", start, scores)
        keep_chunk = keep[:, start:stop]
        first, second = out_removals(keep_chunk, targets, start) if not online else (None, None)
        is_out = None if online else ~keep_chunk
        probability = expit(values.astype(np.float64)).mean(axis=-1)  # [M, n]
        if probability.min() >= TINY_PROBABILITY:
            return _log_ratios(probability, targets, is_out, first, second, a, log_space=False)
        log_p = -np.logaddexp(0.0, -values.astype(np.float64))  # log σ(φ), exact for any finite φ
        log_mean_p = logsumexp(log_p, axis=-1) - np.log(num_views)
        return _log_ratios(log_mean_p, targets, is_out, first, second, a, log_space=True)

    log_ratios = np.concatenate(
        map_example_chunks(work, [scores], num_examples, 24 * num_models * num_views, chunk_examples, workers), axis=1
    )  # [T, N]
    log_ratios = snap(log_ratios)  # ties decided at leave_out.RESOLUTION, not by float64 rounding
    result = np.empty((len(targets), num_examples), dtype=np.float32)
    for row, target in enumerate(targets):
        population_logs = np.sort(log_ratios[row, in_population & ~keep[target]])
        result[row] = _fraction(population_logs, log_ratios[row], np.log(gamma))
    return result


def shortfall(keep: np.ndarray, targets: np.ndarray, online: bool, in_population: np.ndarray) -> str | None:
    """Why RMIA cannot score these inputs, or None: each target needs 2 population examples it did not
    train on, and offline each (target, example) an OUT shadow left after equalised counts."""
    if (in_population & ~keep[targets]).sum(axis=1).min() < 2:
        return "needs ≥ 2 population examples outside each target's training set"
    return None if online else out_shortfall(keep, targets)


def _log_ratios(
    probability: np.ndarray,
    targets: np.ndarray,
    is_out: np.ndarray | None,
    first: np.ndarray | None,
    second: np.ndarray | None,
    a: float,
    log_space: bool,
) -> np.ndarray:
    """log [p_t(x) / Pr(x)] as float64[T, n], from each model's probability of x's label [M, n] (or its log,
    log_space): Pr(x) online the mean over the models other than t, offline ((1 + a) · the mean over x's OUT
    models without `first` and `second` (`out_removals`) + (1 − a)) / 2 (is_out: bool[M, n])."""
    if is_out is None:
        counted = np.ones(probability.shape, dtype=bool)
        first = np.broadcast_to(targets[:, None], (len(targets), probability.shape[1]))
        second = np.full(first.shape, -1)
    else:
        counted = is_out
    count = counted.sum(axis=0) - (first >= 0) - (second >= 0)  # [T, n]: the shadows Pr(x) averages
    if log_space:
        kept = np.where(counted, probability, -np.inf)
        mean = combine_without(kept, first, second, np.logaddexp, -np.inf) - np.log(count)
        own = probability[targets]
        if is_out is not None:
            with np.errstate(divide="ignore"):  # a = 1: no constant term
                mean = np.logaddexp(np.log1p(a) + mean, np.log1p(-a)) - np.log(2.0)
        return own - mean
    mean = combine_without(probability * counted, first, second, np.add, 0.0) / count
    if is_out is not None:
        mean = ((1 + a) * mean + (1 - a)) / 2
    return np.log(probability[targets]) - np.log(mean)


def _fraction(population_logs: np.ndarray, log_ratio: np.ndarray, log_gamma: float) -> np.ndarray:
    """float64[N]: RMIA's fraction for each x, the share of its population with LR(x, z) ≥ γ, plus a tie-break.

    population_logs: the population's log ratios, float64[K] sorted; log_ratio: each x's, float64[N].
    The tie rule: x is compared with the population points whose ratio differs from its own; those with
    LR(x, z) = 1 exactly, x itself among them when x is in its population, are left out, for members and
    non-members alike. Why: a non-member leaves itself out; were a member to keep the population points
    that tie with it, it would beat one more tied point than a non-member of its tie does, so members
    would rank above non-members in every tie (ties are common: masked labels, rounding, saturation).
    Left out together, two examples with equal ratios get equal scores whatever their membership. Where
    x's ratio ties nothing, only x itself is left out (a non-member): floor(score · |Z|) / |Z| is the
    paper's fraction over Z, the population without x.

    Then where x lies between its two neighbouring population ratios (in log space, in [0, 0.999]) is added
    below one step of the fraction: it breaks ties by RMIA's own statistic without reordering two examples
    the fraction tells apart (the fraction's resolution is 1 / K; on digits the examples beyond the largest
    ratio tie at 1.0 and alone exceed 0.1% of the non-members). A score lies in [0, 1 + 1 / |Z|); where
    every population ratio ties x's, nothing is left to compare and the score is 0.5.
    """
    logs = population_logs
    order = np.argsort(log_ratio)  # searching in sorted order is several times faster (the cache)
    log_ratio = log_ratio[order]
    value = log_ratio - log_gamma  # LR(x, z) ≥ γ  <=>  log ratio_z ≤ value
    tie_start = np.searchsorted(logs, log_ratio, side="left")
    tied = np.searchsorted(logs, log_ratio, side="right") - tie_start
    size = len(logs) - tied
    if log_gamma == 0:
        below = tie_start
    else:
        below = np.searchsorted(logs, value, side="right") - np.where(value >= log_ratio, tied, 0)

    def log_ratio_at(position: np.ndarray) -> np.ndarray:  # the position-th ratio once x's ties are left out
        return logs[np.clip(position + np.where(position >= tie_start, tied, 0), 0, len(logs) - 1)]

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
    fraction = np.empty(len(order))
    fraction[order] = np.where(size > 0, (below + np.clip(position, 0.0, 0.999)) / np.maximum(size, 1), 0.5)
    return fraction


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
