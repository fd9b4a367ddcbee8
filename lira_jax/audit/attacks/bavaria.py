"""BaVarIA (Brännvall, arXiv 2603.11799, 2026): LiRA with each example's variance estimated by Bayes.

Only the paper's abstract could be read here, so the model below is this project's reading of it, the
standard conjugate one (docs/auditing.md, "BaVarIA"). Each example's IN and OUT sets are LiRA's
(`lira_jax.audit.attacks.lira.shadow_sets`, the same counts), per view. Within a set of n shadow scores, φ ~ N(μ, σ²);
μ has a flat prior and σ² a scaled inverse-χ² prior (d0 degrees of freedom, scale s0²), the limit κ0 → 0 of
a normal-inverse-gamma prior with α0 = d0 / 2, β0 = d0 s0² / 2. The prior is fitted per target, side and
view across the examples by moments of the log sample variances (empirical Bayes as in limma, Smyth
2004): with k = n − 1 and s² = Σ(φ − φ̄)² / k, s² / s0² ~ F(k, d0), so

    E[log s²] = log s0² + ψ(k/2) − log(k/2) − ψ(d0/2) + log(d0/2),   Var[log s²] = ψ'(k/2) + ψ'(d0/2).

The posterior of σ² is scaled inverse-χ² with d0 + k degrees of freedom and scale
s̃² = (d0 s0² + k s²) / (d0 + k) (d0 = ∞ where the log variances vary no more than sampling does: then
s̃² = s0², LiRA's fixed variance), and a new score's predictive is Student-t: φ ~ t_{d0+k}(φ̄, s̃² (1 + 1/n)).

    bavaria_t (online):  mean over views of log t(φ_t; IN) − log t(φ_t; OUT)
    bavaria_n (offline): mean over views of log Φ((φ_t − φ̄_out) / (s̃_out √(1 + 1/n_out)))

Two passes over the scores, each without sorting: the first sums what fits the priors, the second scores.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import digamma, gammaln, log_ndtr, polygamma

from lira_jax.audit.attacks.equalise import TargetSets
from lira_jax.audit.attacks.lira.lira import MIN_STD, LiraOptions, mean_over_views, not_applicable
from lira_jax.audit.attacks.lira.shadow_sets import chunk_sets, count_rule
from lira_jax.audit.inputs.checked import AttackInputs, NotApplicable
from lira_jax.audit.streaming import map_example_chunks

MIN_VARIANCE = MIN_STD**2
DF_GAUSSIAN = 1e6  # beyond these degrees of freedom the Student-t is taken as its Gaussian limit
MIN_PRIOR_EXAMPLES = 3  # examples with >= 2 shadows on a side that its prior is fitted from (a variance needs 2)


def bavaria_family(inputs: AttackInputs, names: Sequence[str]) -> dict[str, np.ndarray | NotApplicable]:
    """The registry's BaVarIA: {name: float32[T, N]} for bavaria_t and bavaria_n, on LiRA's shadow sets
    (the options' lira_counts); NotApplicable where some (target, example) has no shadow on a side it reads,
    or a target has fewer than MIN_PRIOR_EXAMPLES examples with 2 shadows on it to fit the prior from."""
    keep, targets, scores = inputs.keep, inputs.targets, inputs.scores
    counts = inputs.options.lira_counts
    as_lira = {name: LiraOptions(online=name == "bavaria_t", fixed_variance=True) for name in names}
    skipped = not_applicable(keep, targets, as_lira, counts, fixed_spread=False)  # a shadow per set
    scored = [name for name in names if name not in skipped]
    if not scored:
        return skipped
    online = "bavaria_t" in scored
    rule = count_rule(keep, targets, counts)
    num_examples, num_views = scores.shape[1:]
    chunk_options = dict(
        bytes_per_example=num_views * len(targets) * 8 * 8,
        chunk_examples=inputs.options.chunk_examples,
        workers=inputs.options.workers,
    )

    def prior_work(start: int, stop: int, values: np.ndarray) -> np.ndarray:
        sets = chunk_sets(values, keep[:, start:stop], targets, start, scores, {None}, online, rule)[None]
        return _prior_sums(sets, online)

    sums = np.sum(map_example_chunks(prior_work, [scores], num_examples, **chunk_options), axis=0)
    sides = sums[: 2 if online else 1]
    if (sides[:, 0] < MIN_PRIOR_EXAMPLES).any():
        reason = NotApplicable(f"needs ≥ {MIN_PRIOR_EXAMPLES} examples with ≥ 2 shadows per set to fit the prior")
        return {name: skipped.get(name, reason) for name in names}
    priors = [_fit_prior(*side_sums) for side_sums in sides]
    results = {name: np.empty((len(targets), num_examples), dtype=np.float32) for name in scored}

    def score_work(start: int, stop: int, values: np.ndarray) -> None:
        sets = chunk_sets(values, keep[:, start:stop], targets, start, scores, {"mean"}, online, rule)["mean"]
        out = _predictive(sets.residual_out, sets.variance_out, sets.size_out, *priors[0])
        if "bavaria_n" in results:
            results["bavaria_n"][:, start:stop] = mean_over_views(log_ndtr(out[0] / np.sqrt(out[1])))
        if "bavaria_t" in results:
            inside = _predictive(sets.residual_in, sets.variance_in, sets.size_in, *priors[1])
            results["bavaria_t"][:, start:stop] = mean_over_views(_log_student_t(*inside) - _log_student_t(*out))

    map_example_chunks(score_work, [scores], num_examples, **chunk_options)
    return {name: skipped[name] if name in skipped else results[name] for name in names}


def _prior_sums(sets: TargetSets, online: bool) -> np.ndarray:
    """float64[2, 4, T, V]: per side (OUT, then IN: zeros offline) the sums over a chunk's examples with k =
    n − 1 >= 1 of [1, e, e², ψ'(k/2)], e = log s² − ψ(k/2) + log(k/2) (s² floored at MIN_VARIANCE)."""
    sums = np.zeros((2, 4, len(sets.size_out), sets.variance_out.shape[-1]))
    for row, (variance, size) in enumerate(((sets.variance_out, sets.size_out), (sets.variance_in, sets.size_in))):
        if row == 1 and not online:
            break
        dof = (size - 1).astype(np.float64)[..., None]  # [T, n, 1]
        fitted = np.broadcast_to(dof >= 1, variance.shape)
        # The few distinct set sizes: ψ and ψ' of each once (they cost far more than the rest of this).
        halves, which = np.unique(np.maximum(dof, 1) / 2, return_inverse=True)
        which = which.reshape(dof.shape)
        sample = np.maximum(variance * (dof + 1) / np.maximum(dof, 1), MIN_VARIANCE)
        centred = np.log(sample) - (digamma(halves) - np.log(halves))[which]
        for column, field in enumerate((np.ones_like(variance), centred, centred * centred)):
            sums[row, column] = np.where(fitted, field, 0.0).sum(axis=1)
        sums[row, 3] = np.where(fitted, polygamma(1, halves)[which], 0.0).sum(axis=1)
    return sums


def _fit_prior(count, total, squares, trigammas) -> tuple[np.ndarray, np.ndarray]:
    """(d0, s0²), float64[T, V] each, from `_prior_sums` over every example: limma's moments (Smyth 2004).
    d0 = 2 ψ'⁻¹(Var e − mean ψ'(k/2)), ∞ where that is not positive; s0² = exp(mean e + ψ(d0/2) − log(d0/2))."""
    mean = total / count
    excess = (squares - count * mean * mean) / (count - 1) - trigammas / count
    prior_df = np.full(mean.shape, np.inf)
    positive = excess > 0
    prior_df[positive] = 2 * _trigamma_inverse(excess[positive])
    half = np.where(positive, prior_df, 2.0) / 2
    prior_variance = np.exp(mean + np.where(positive, digamma(half) - np.log(half), 0.0))
    return prior_df, np.maximum(prior_variance, MIN_VARIANCE)


def _trigamma_inverse(values: np.ndarray) -> np.ndarray:
    """x > 0 with ψ'(x) = values (> 0), by limma's Newton iteration (ψ' is convex and decreasing)."""
    x = 0.5 + 1.0 / values
    for _ in range(50):
        trigamma = polygamma(1, x)
        step = trigamma * (1 - trigamma / values) / polygamma(2, x)
        x = x + step
        if np.all(-step / x < 1e-8):
            break
    return np.where(values > 1e7, 1.0 / np.sqrt(values), np.where(values < 1e-6, 1.0 / values, x))


def _predictive(residual, variance, size, prior_df, prior_variance) -> tuple[np.ndarray, ...]:
    """(φ_t − φ̄, predictive scale² s̃² (1 + 1/n), degrees of freedom d0 + k), float64[T, n, V], of one side:
    residual and variance (ddof 0) [T, n, V], size int[T, n] (>= 1), the prior [T, V]."""
    size = size.astype(np.float64)[..., None]
    squares = variance * size  # Σ(φ − φ̄)²
    prior_df, prior_variance = prior_df[:, None, :], prior_variance[:, None, :]
    finite = np.isfinite(prior_df)
    weight = np.where(finite, prior_df, 0.0)
    dof = size - 1
    with np.errstate(invalid="ignore", divide="ignore"):  # d0 = k = 0 only where d0 is infinite
        moderated = np.where(finite, (weight * prior_variance + squares) / (weight + dof), prior_variance)
    scale = np.maximum(moderated * (1 + 1 / size), MIN_VARIANCE)
    return residual, scale, prior_df + dof


def _log_student_t(residual: np.ndarray, scale: np.ndarray, dof: np.ndarray) -> np.ndarray:
    """log t_ν(residual; 0, scale), elementwise; the Gaussian log density where ν > DF_GAUSSIAN."""
    z2 = residual * residual / scale
    gaussian = -0.5 * (np.log(2 * np.pi * scale) + z2)
    nu = np.minimum(dof, DF_GAUSSIAN)
    student = (
        gammaln((nu + 1) / 2) - gammaln(nu / 2) - 0.5 * np.log(nu * np.pi * scale) - (nu + 1) / 2 * np.log1p(z2 / nu)
    )
    return np.where(dof > DF_GAUSSIAN, gaussian, student)
