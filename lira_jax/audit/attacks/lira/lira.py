"""LiRA scores, streamed over examples, for every target model at once.

Conventions (docs/auditing.md): scores φ: float32[M, N, V] for M models, N examples, V query views;
keep: bool[M, N]; every attack returns float32[T, N] for T targets, higher = more likely a member.
For target t and example n, IN = {m != t : keep[m, n]} and OUT = {m != t : not keep[m, n]}, then by
default one shadow of the larger set dropped (equalised counts, DESIGN.md "Scoring semantics"); raw
counts keep them all; the reference's counts truncate them as plot.py does (`lira_jax.audit.attacks.lira.truncation`).
Arrays may be memmaps of any size: they are read in chunks of examples (`lira_jax.audit.streaming`).

All targets at once: the IN and OUT sets of target t differ from the full sets of all models only by t
itself (and, with equalised counts, by the one shadow dropped from the larger set; with the reference's,
by at most two shadows past its truncation), so each example's sets are sorted and summed once, and every
target's statistics follow in O(1) by taking those scores back out (`lira_jax.audit.attacks.equalise`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
from scipy.special import log_ndtr

from lira_jax.audit.attacks.equalise import TargetSets, equalised_sizes
from lira_jax.audit.attacks.lira.shadow_sets import CountRule, chunk_sets, count_rule
from lira_jax.audit.attacks.lira.truncation import truncation
from lira_jax.audit.inputs.checked import (
    COUNTS,
    EQUALISED,
    REFERENCE,
    AttackInputs,
    NotApplicable,
    check_scores_keep,
    check_shadows,
)
from lira_jax.audit.streaming import ExampleArray, map_example_chunks, within_float32
from lira_jax.errors import UserError

MIN_STD = 1e-6
HALF_LOG_2PI = 0.5 * np.log(2 * np.pi)
DEFERRED_BYTES = 256 << 20  # fixed-variance LiRA keeps [T, N, V] float64 up to this size


@dataclass(frozen=True)
class LiraOptions:
    """One LiRA variant: online (IN and OUT Gaussians) or offline (OUT only, one-sided log Φ);
    fixed_variance: one σ per target for all examples and views; centre: median or mean of each set;
    two_sided: offline only, −log N(φ; μ_out, σ_out²) as in the public reference code."""

    online: bool = True
    fixed_variance: bool = False
    centre: Literal["median", "mean"] = "median"
    two_sided: bool = False

    def __post_init__(self) -> None:
        if self.centre not in ("median", "mean"):
            raise UserError(f"LiRA centre must be 'median' or 'mean', got {self.centre!r}")
        if self.two_sided and self.online:
            raise UserError("two_sided is a variant of offline LiRA (online=False)")


LIRA_VARIANTS: dict[str, LiraOptions] = {
    "lira_online": LiraOptions(online=True),
    "lira_online_fixed_var": LiraOptions(online=True, fixed_variance=True),
    "lira_offline": LiraOptions(online=False),
    "lira_offline_fixed_var": LiraOptions(online=False, fixed_variance=True),
    "lira_offline_two_sided": LiraOptions(online=False, two_sided=True),
}
DEFAULT_VARIANTS = ("lira_online", "lira_online_fixed_var", "lira_offline", "lira_offline_fixed_var")


def _variance_sums(sets: TargetSets, online: bool, reference: bool) -> np.ndarray:
    """Sums over a chunk's examples and views, per target, for the fixed σ (`_fixed_sigma`). With the
    reference's counts float64[6, T]: of each target's OUT set variance, mean and squared mean, then the same
    of its IN set (zeros where not computed). Otherwise float64[4, T]: the OUT variances of the sets of at
    least 2 shadows and how many there are, then (var_IN + var_OUT) / 2 where both sets hold 2 and how many
    (zeros offline): a set of one shadow has no spread, so it takes no part in the mean."""
    if reference:
        rows = []
        sides = [(sets.variance_out, sets.mean_out)] + [(sets.variance_in, sets.mean_in) if online else (None, None)]
        for variance, mean in sides:
            for field in (variance, mean, None if mean is None else mean * mean):
                rows.append(np.zeros(len(sets.size_out)) if field is None else field.sum(axis=(1, 2)))
        return np.stack(rows)
    num_views = sets.variance_out.shape[2]
    spread_out = sets.size_out >= 2  # [T, n]
    rows = [np.einsum("tnv,tn->t", sets.variance_out, spread_out), spread_out.sum(axis=1) * num_views]
    if online:
        spread = spread_out & (sets.size_in >= 2)
        rows += [
            np.einsum("tnv,tn->t", sets.variance_in + sets.variance_out, spread) / 2,
            spread.sum(axis=1) * num_views,
        ]
    else:
        rows += [np.zeros(len(spread_out)), np.zeros(len(spread_out))]
    return np.stack(rows).astype(np.float64)


def _fixed_sigma(sums: np.ndarray, online: bool, counts: CountRule, count: int) -> np.ndarray:
    """Each target's fixed σ, float64[T], from `_variance_sums` added over all examples (count = N·V values
    per target): the root of the mean per-example variance of OUT (offline) or of (var_IN + var_OUT) / 2
    (online), over the (example, view) pairs whose sets hold at least 2 shadows (`not_applicable` makes
    the variant n/a where a target has none); with the reference's counts the spread of every value of the
    IN sets (online, used for both sides) or of the OUT sets (offline), as plot.py's np.std; at least MIN_STD."""
    if counts.kind == REFERENCE:
        variance_out, mean_out, square_out, variance_in, mean_in, square_in = sums / count
        variance, mean, square = (variance_in, mean_in, square_in) if online else (variance_out, mean_out, square_out)
        variance = variance + square - mean * mean
    else:
        total, pairs = sums[2:4] if online else sums[0:2]
        variance = total / np.maximum(pairs, 1)
    return np.maximum(np.sqrt(np.maximum(variance, 0.0)), MIN_STD)


def _first_pass_sigma(scores, keep, targets, counts: CountRule, chunk_options) -> np.ndarray:
    """Pass 1 for offline LiRA with a fixed σ on large problems: σ[T] from the OUT sets alone."""
    means = counts.kind == REFERENCE

    def work(start: int, stop: int, values: np.ndarray) -> np.ndarray:
        sets = chunk_sets(values, keep[:, start:stop], targets, start, scores, {None}, False, counts, means)[None]
        return _variance_sums(sets, online=False, reference=means)

    num_models, num_examples, num_views = scores.shape
    sums = np.sum(map_example_chunks(work, [scores], num_examples, **chunk_options), axis=0)
    return _fixed_sigma(sums, False, counts, num_examples * num_views)


def lira_scores(
    scores: ExampleArray,
    keep: np.ndarray,
    targets: Sequence[int] | None = None,
    variants: Mapping[str, LiraOptions] | Iterable[str] = DEFAULT_VARIANTS,
    *,
    counts: str = EQUALISED,
    chunk_examples: int | None = None,
    workers: int | None = None,
) -> dict[str, np.ndarray]:
    """LiRA scores of several variants from one pass over the scores (two for some fixed-variance runs).

    scores: float32[M, N, V] (a memmap is read in chunks); keep: bool[M, N];
    targets: model indices (default: all); variants: names of LIRA_VARIANTS or {name: LiraOptions}.
    Returns {name: float32[T, N]}: the mean over views of
      online:  log N(φ_t; μ_in, σ_in²) − log N(φ_t; μ_out, σ_out²)
      offline: log Φ((φ_t − μ_out) / σ_out), or −log N(φ_t; μ_out, σ_out²) if two_sided,
    with μ the per-view median (or mean) of each set, σ its std (ddof 0, at least 1e-6), or with fixed
    variance one σ per target: sqrt of the mean over (n, v) of var_OUT (offline) or (var_IN + var_OUT) / 2.
    counts: "equalised" (each target's two shadow sets made the same size, `lira_jax.audit.attacks.equalise`),
    "raw", or "reference": plot.py's sets (each truncated to the smallest count over examples, in model
    order, `lira_jax.audit.attacks.lira.truncation`) and its fixed σ, the std of every value of the IN sets (online,
    both sides) or of the OUT sets (offline), over the sets of at least 2 shadows. Where a set has fewer
    than 2 shadows its σ is 0, floored at 1e-6 (and a fixed σ with no such set is 1e-6): the registry
    reports such variants not applicable instead (`not_applicable`).
    """
    if counts not in COUNTS:
        raise UserError(f"LiRA counts must be one of {', '.join(COUNTS)}, got {counts!r}")
    if not isinstance(variants, Mapping):
        unknown = [name for name in variants if name not in LIRA_VARIANTS]
        if unknown:
            raise UserError(f"unknown LiRA variant(s) {unknown}; known: {sorted(LIRA_VARIANTS)}")
        variants = {name: LIRA_VARIANTS[name] for name in variants}
    keep, targets = check_scores_keep(scores, keep, targets)
    online = any(options.online for options in variants.values())
    check_shadows(keep, targets, need_in=online, need_out=True, attack="LiRA")
    return _lira(scores, keep, targets, variants, counts, chunk_examples, workers)


def lira_family(inputs: AttackInputs, names: Sequence[str]) -> dict[str, np.ndarray | NotApplicable]:
    """The registry's LiRA: {name: float32[T, N]} for names of LIRA_VARIANTS, with the options' centre and
    counts; NotApplicable for a variant whose sets are too small (`not_applicable`)."""
    options = inputs.options
    variants = {name: replace(LIRA_VARIANTS[name], centre=options.lira_centre) for name in names}
    skipped = not_applicable(inputs.keep, inputs.targets, variants, options.lira_counts, inputs.scores.shape[2])
    scored = {name: variant for name, variant in variants.items() if name not in skipped}
    results = {}
    if scored:
        results = _lira(
            inputs.scores,
            inputs.keep,
            inputs.targets,
            scored,
            options.lira_counts,
            options.chunk_examples,
            options.workers,
        )
    return {name: skipped[name] if name in skipped else results[name] for name in names}


def not_applicable(
    keep: np.ndarray,
    targets: np.ndarray,
    variants: Mapping[str, LiraOptions],
    counts: str,
    num_views: int = 1,
    fixed_spread: bool = True,
) -> dict:
    """{name: NotApplicable} for the variants these sets cannot score (keep bool[M, N], targets int[T]);
    fixed_spread=False checks a fixed-variance variant's centres only (BaVarIA fits its spread elsewhere).

    A spread needs at least 2 values: a per-example σ needs 2 shadows in each set it describes for every
    (target, example); a fixed σ, the mean of per-example variances over the sets with 2 shadows, needs
    such a set (both sets online) at some example of every target, besides a shadow in each set of every
    (target, example) for its centre. With the reference's counts the fixed σ is the spread of every value
    of the truncated sets pooled, which needs 2 values in all."""
    if counts == REFERENCE:  # one size per target and side
        sizes = truncation(keep, targets)
        sizes_in, sizes_out = sizes.size_in[:, None], sizes.size_out[:, None]
    elif counts == EQUALISED:
        sizes_in, sizes_out = equalised_sizes(keep, targets)
    else:
        count_in = keep.sum(axis=0)
        sizes_in = count_in - keep[targets]
        sizes_out = keep.shape[0] - count_in - ~keep[targets]
    smallest = {True: np.minimum(sizes_in, sizes_out), False: sizes_out}  # [T, N], or [T, 1] for the reference
    skipped = {}
    for name, options in variants.items():
        sets = "IN and {0} OUT shadows" if options.online else "OUT shadows"
        needed = 1 if options.fixed_variance else 2
        if smallest[options.online].min() < needed:
            skipped[name] = NotApplicable(f"needs ≥ {needed} {sets.format(needed)} per example")
        elif not fixed_spread:
            continue
        elif options.fixed_variance and counts == REFERENCE:
            if smallest[options.online].min() * keep.shape[1] * num_views < 2:
                skipped[name] = NotApplicable("its fixed σ needs ≥ 2 values in the truncated sets")
        elif options.fixed_variance and not (smallest[options.online] >= 2).any(axis=1).all():
            skipped[name] = NotApplicable(
                f"its fixed σ needs, for each target, an example with ≥ 2 {sets.format(2)} (a set of 1 has no spread)"
            )
    return skipped


def _lira(scores, keep, targets, variants: Mapping[str, LiraOptions], counts, chunk_examples, workers) -> dict:
    """`lira_scores` on checked inputs: keep bool[M, N], targets int64[T], an IN and OUT shadow for each."""
    online = any(options.online for options in variants.values())
    num_models, num_examples, num_views = scores.shape
    num_targets = len(targets)
    rule = count_rule(keep, targets, counts)
    # Chunks are sized for the per-target work, float64 [T, V] temporaries per example (about 30 live
    # at once, but sizing for 8 amortises NumPy's per-call overhead); the sets are done in sub-chunks.
    chunk_options = dict(
        bytes_per_example=num_views * num_targets * 8 * 8,
        chunk_examples=chunk_examples,
        workers=workers,
    )
    # A fixed σ needs every example first. Online it only divides: each (target, example)'s mean over views
    # of what it divides is kept, [T, N], and divided at the end. Offline it enters log Φ: small problems
    # keep what it applies to, [T, N, V] (T·N·V floats within DEFERRED_BYTES), and finish at the end;
    # larger ones make a first pass over the OUT sets, without sorting, for σ.
    fixed = {name: options for name, options in variants.items() if options.fixed_variance}
    offline_fixed = [name for name, options in fixed.items() if not options.online]
    deferred = bool(offline_fixed) and num_targets * num_examples * num_views * 8 <= DEFERRED_BYTES
    sigmas = {}
    if offline_fixed and not deferred:
        sigmas[False] = _first_pass_sigma(scores, keep, targets, rule, chunk_options)
    kept = {
        name: np.empty((num_targets, num_examples) if options.online else (num_targets, num_examples, num_views))
        for name, options in fixed.items()
        if options.online or deferred
    }
    results = {name: np.empty((num_targets, num_examples), dtype=np.float32) for name in variants}
    centres = {options.centre for options in variants.values()}
    means = bool(kept) and rule.kind == REFERENCE

    def work(start: int, stop: int, values: np.ndarray) -> np.ndarray | None:
        by_centre = chunk_sets(values, keep[:, start:stop], targets, start, scores, centres, online, rule, means)
        _score_variants(variants, by_centre, sigmas, kept, results, slice(start, stop))
        return _variance_sums(next(iter(by_centre.values())), online, rule.kind == REFERENCE) if kept else None

    partial_sums = map_example_chunks(work, [scores], num_examples, **chunk_options)
    if kept:
        sums = np.sum(partial_sums, axis=0)
        for name in list(kept):
            part, options = kept.pop(name), variants[name]  # each [T, N(, V)] freed once scored
            sigma = _fixed_sigma(sums, options.online, rule, num_examples * num_views)
            if options.online:
                results[name][:] = part / (sigma * sigma)[:, None]
            else:
                results[name][:] = mean_over_views(_with_fixed_sigma(options, part, sigma[:, None, None]))
    return results


def _score_variants(
    variants: Mapping[str, LiraOptions],
    by_centre: dict[str, TargetSets],
    sigmas: dict[bool, np.ndarray],
    kept: dict[str, np.ndarray],
    results: dict[str, np.ndarray],
    examples: slice,
) -> None:
    """Each variant's float32[T, n] scores of a chunk of examples into results[name][:, examples]; for a
    fixed σ known only at the end, what σ applies to into kept[name][:, examples] instead (online: its
    mean over views, as σ only divides it)."""
    for name, options in variants.items():
        stats = by_centre[options.centre]
        if name in kept:
            part = _fixed_variance_part(options, stats)
            kept[name][:, examples] = mean_over_views(part) if options.online else part
            continue
        if options.fixed_variance:  # offline, σ from the first pass
            sigma = sigmas[False][:, None, None]
            per_view = _with_fixed_sigma(options, _fixed_variance_part(options, stats), sigma)
        else:
            per_view = _per_example_variance_score(options, stats)
        results[name][:, examples] = mean_over_views(per_view)


def mean_over_views(per_view: np.ndarray) -> np.ndarray:
    """[..., V] -> [...], within float32's range; einsum's own loop: faster than .mean, and no BLAS call from
    worker threads."""
    return within_float32(np.einsum("...v,v->...", per_view, np.full(per_view.shape[-1], 1.0 / per_view.shape[-1])))


def _per_example_variance_score(options: LiraOptions, stats: TargetSets) -> np.ndarray:
    """Per-view score [T, n, V] with each example's own σ_in, σ_out (σ² floored at MIN_STD²)."""
    variance_out = np.maximum(stats.variance_out, MIN_STD**2)
    if options.online:
        variance_in = np.maximum(stats.variance_in, MIN_STD**2)
        return 0.5 * (
            np.log(variance_out / variance_in)
            + stats.residual_out**2 / variance_out
            - stats.residual_in**2 / variance_in
        )
    if options.two_sided:
        return 0.5 * (np.log(variance_out) + stats.residual_out**2 / variance_out) + HALF_LOG_2PI
    return log_ndtr(stats.residual_out / np.sqrt(variance_out))


def _fixed_variance_part(options: LiraOptions, stats: TargetSets) -> np.ndarray:
    """What a fixed σ applies to: φ_t − μ_out (offline), ((φ_t − μ_out)² − (φ_t − μ_in)²) / 2 (online)."""
    if options.online:
        return 0.5 * (stats.residual_out**2 - stats.residual_in**2)
    return stats.residual_out


def _with_fixed_sigma(options: LiraOptions, part: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    """Offline per-view score from `_fixed_variance_part` and each target's σ [T, 1, 1] (online, σ only
    divides the part's mean over views: `_lira` does it)."""
    z_out = part / sigma
    if options.two_sided:
        return np.log(sigma) + HALF_LOG_2PI + 0.5 * z_out * z_out
    return log_ndtr(z_out)


def lira(
    scores: ExampleArray,
    keep: np.ndarray,
    targets: Sequence[int] | None = None,
    *,
    online: bool = True,
    fixed_variance: bool = False,
    centre: Literal["median", "mean"] = "median",
    two_sided: bool = False,
    counts: str = "equalised",
    chunk_examples: int | None = None,
    workers: int | None = None,
) -> np.ndarray:
    """One LiRA variant (see `lira_scores`): float32[T, N] for scores float32[M, N, V], keep bool[M, N]."""
    options = LiraOptions(online=online, fixed_variance=fixed_variance, centre=centre, two_sided=two_sided)
    chosen = {"lira": options}
    return lira_scores(scores, keep, targets, chosen, counts=counts, chunk_examples=chunk_examples, workers=workers)[
        "lira"
    ]
