"""LiRA's shadow sets: each example's IN and OUT sets summarised once, each target's sets taken from them.

For a chunk of examples, `_example_set_stats` sorts and sums every example's IN and OUT scores over all
models once (`equalise.SetStats`); `chunk_sets` then gives each target its own sets in O(1) per (target,
example) by taking out the models a `CountRule` removes (`equalise.target_sets`): equalised counts (the
target and one shadow of the larger set), raw counts (the target alone), or the reference's plot.py
truncation (the target and the shadows past its size, `truncation`).

values: float32[M, n, V] every model's scores on the chunk; keep: bool[M, n]; targets: int[T].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lira_jax.audit.attacks.equalise import (
    Removals,
    SetStats,
    equalised_removals,
    raw_removals,
    target_sets,
)
from lira_jax.audit.attacks.lira.truncation import Truncation, reference_removals, truncation
from lira_jax.audit.inputs.checked import EQUALISED, REFERENCE
from lira_jax.audit.streaming import check_finite

SET_CHUNK_BYTES = 4 << 20  # working memory of sorting and summing each example's sets

_STAT_FIELDS = ("shift", "sum", "sum_squares", "low", "middle", "high", "high2")


def _set_fields(sets: np.ndarray, sort: bool) -> tuple[np.ndarray, ...]:
    """_STAT_FIELDS of S sets of k values each: sets float32[g, V, S, k] (sorted in place) -> [g, V, S] each."""
    size = sets.shape[-1]
    if sort:
        sets.sort(axis=-1)
    middle = (size - 1) // 2
    deviation = sets.astype(np.float64)
    shift = deviation[..., middle].copy()
    deviation -= shift[..., None]
    low = sets[..., max(middle - 1, 0)].astype(np.float64)
    high = sets[..., min(middle + 1, size - 1)].astype(np.float64)
    high2 = sets[..., min(middle + 2, size - 1)].astype(np.float64)
    sums = np.add.reduce(deviation, axis=-1), np.einsum("...k,...k->...", deviation, deviation)
    return shift, *sums, low, shift, high, high2


def _example_set_stats(
    values: np.ndarray,
    keep: np.ndarray,
    start: int,
    sort: bool,
    source: Any = None,
    limits: tuple[int, int] | None = None,
) -> tuple[SetStats, ...]:
    """(IN, OUT) statistics of each example; values: float32[M, n, V] from example `start` of the array
    `source` (for error messages), keep: bool[M, n]; limits: (L_in, L_out) to summarise only each side's
    first models in model order (the reference's truncation), or None for every model.

    Examples of equal IN-set size go together, a few at a time (about SET_CHUNK_BYTES of working memory:
    the sorts and sums run best in cache). Their models are gathered IN first into [g, V, M] (a row take
    moves V values at a time, far faster than element-wise fancy indexing, and transposes on the way)
    and each set's part is sorted if `sort`; with M/2 models in each set, as one [g, V, 2, M/2] array.
    """
    num_models, num_examples, num_views = values.shape
    keep_by_example = np.ascontiguousarray(keep.T)
    sizes_in = keep_by_example.sum(axis=1)
    limit_in, limit_out = limits or (num_models, num_models)
    fields = [{name: np.full((num_examples, num_views), np.nan) for name in _STAT_FIELDS} for _ in range(2)]
    step = max(1, SET_CHUNK_BYTES // (16 * num_models * num_views))
    for size_in in np.unique(sizes_in):
        same_size = np.flatnonzero(sizes_in == size_in)
        for at in range(0, len(same_size), step):
            columns = same_size[at : at + step]
            count = len(columns)
            # A compact copy first: gathering rows from the whole chunk misses the TLB far more often.
            if columns[-1] - columns[0] == count - 1:
                columns = slice(columns[0], columns[-1] + 1)
                compact = np.ascontiguousarray(values[:, columns])
            else:
                compact = values.take(columns, axis=1)
            order = np.argsort(~keep_by_example[columns], axis=1, kind="stable")  # [g, M]: IN models, then OUT
            rows = (order * count + np.arange(count)[:, None]).reshape(-1)
            gathered = compact.reshape(num_models * count, num_views).take(rows, axis=0)
            group = np.ascontiguousarray(gathered.reshape(count, num_models, num_views).transpose(0, 2, 1))
            kept_in, kept_out = min(size_in, limit_in), min(num_models - size_in, limit_out)
            if 2 * size_in == num_models and kept_in == kept_out == size_in:
                computed = _set_fields(group.reshape(*group.shape[:2], 2, size_in), sort)
                per_set = [[field[..., which] for field in computed] for which in (0, 1)]
            else:
                parts = (group[..., None, :kept_in], group[..., None, size_in : size_in + kept_out])
                per_set = [
                    [field[..., 0] for field in _set_fields(part, sort)] if part.shape[-1] else [] for part in parts
                ]
            for set_fields, computed in zip(fields, per_set, strict=True):
                for name, field in zip(_STAT_FIELDS, computed, strict=False):
                    set_fields[name][columns] = field
    sizes = (np.minimum(sizes_in, limit_in), np.minimum(num_models - sizes_in, limit_out))
    for set_fields, set_sizes in zip(fields, sizes, strict=True):
        if not np.isfinite(set_fields["sum_squares"][set_sizes > 0]).all():  # NaN/inf spreads to the sums
            check_finite(values, "scores", start, source)
    return tuple(SetStats(size=set_sizes, **set_fields) for set_fields, set_sizes in zip(fields, sizes, strict=True))


@dataclass(frozen=True)
class CountRule:
    """How each target's shadow sets are formed from every model's (DESIGN.md, "Scoring semantics"):
    equalised, raw, or the reference's truncation (sizes computed once, over every example)."""

    kind: str
    truncation: Truncation | None = None

    @property
    def limits(self) -> tuple[int, int] | None:
        return None if self.truncation is None else self.truncation.limits

    def removals(self, keep_chunk: np.ndarray, targets: np.ndarray, start: int) -> Removals:
        if self.kind == EQUALISED:
            return equalised_removals(keep_chunk, targets, start)
        if self.kind == REFERENCE:
            return reference_removals(keep_chunk, targets, self.truncation)
        return raw_removals(keep_chunk, targets)


def count_rule(keep: np.ndarray, targets: np.ndarray, kind: str) -> CountRule:
    """The rule `kind` ("equalised", "raw" or "reference") for keep bool[M, N] (every example: the
    reference's sizes are minima over all of them) and targets int[T]."""
    return CountRule(kind, truncation(keep, targets) if kind == REFERENCE else None)


def chunk_sets(
    values: np.ndarray,
    keep_chunk: np.ndarray,
    targets: np.ndarray,
    start: int,
    source: Any,
    centres: set,
    online: bool,
    counts: CountRule,
    means: bool = False,
) -> dict:
    """{centre: each target's sets (`equalise.TargetSets`, by `counts`)} for a chunk of examples from
    `start` of the array `source`; values: float32[M, n, V], keep_chunk: bool[M, n], targets: int[T];
    the centre None gives the variances only; IN statistics only `online`; means: each set's mean too
    (the reference's fixed σ)."""
    stats_in, stats_out = _example_set_stats(values, keep_chunk, start, "median" in centres, source, counts.limits)
    removals = counts.removals(keep_chunk, targets, start)
    return {
        centre: target_sets(stats_in, stats_out, values, targets, removals, centre, online, means) for centre in centres
    }
