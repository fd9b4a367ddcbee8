"""Sums over shadow sets that leave some models out, and the resolution at which their results are compared.

Sums over every model but a target (and a dropped shadow) are taken without subtracting anything: prefix and
suffix accumulations, and power-of-two blocks between two models left out. Subtracting a term back out of a
total would cancel where one term dominates (a model confidently wrong by hundreds: 0 / 0 in RMIA).

Why `snap`: a mean over a shadow set is rounded in float64 by the order its terms were added, and that order
depends on which models are left out: with a balanced keep matrix, the target itself for a non-member, a
dropped shadow for a member. Where outputs are equal (identical models, `--mask label`, rounding, saturated
float16), two examples whose sets hold the same values would then differ in the last bits, by membership,
and a ranking breaks every such tie the same way. So these results are compared at a resolution of
RESOLUTION (2^-30 in log space, a likelihood ratio to within a factor 1 ± 1e-9; float64 rounding of sums
over thousands of models stays below 1e-12): `snap` rounds them to that grid. What it gives up: two
ratios closer than 1e-9, which happens where a probability lies within about 1e-9 of 1 in every model
(φ above 21), and such a ratio says next to nothing about membership.
"""

from __future__ import annotations

import numpy as np

RESOLUTION = 2.0**-30


def snap(values: np.ndarray) -> np.ndarray:
    """values (float64, any shape) rounded to the nearest multiple of RESOLUTION; beyond 2^22 in magnitude
    (where float64's own spacing is coarser) and infinities they stay as they are."""
    fine = np.abs(values) < 2.0**22
    return np.where(fine, np.round(np.where(fine, values, 0.0) / RESOLUTION) * RESOLUTION, values)


def combine_without(
    values: np.ndarray, first: np.ndarray, second: np.ndarray, combine: np.ufunc, empty: float
) -> np.ndarray:
    """[T, n]: values [M, n] combined (np.add, or np.logaddexp for logs) over every model but `first` and
    `second` (int[T, n], −1: none; a second only where there is a first), without subtracting anything:
    exact where taking a term back out would cancel. The models below the lower one and above the higher
    one come from prefix and suffix accumulations, those between them from power-of-two blocks."""
    num_models, num_examples = values.shape
    filler = np.full((1, num_examples), empty)
    before = np.concatenate([filler, combine.accumulate(values, axis=0)])  # before[m]: models < m; [M]: all
    after = np.concatenate([combine.accumulate(values[:0:-1], axis=0)[::-1], filler, filler])  # models > m
    first = np.where(first < 0, num_models, first)
    low = np.where(second < 0, first, np.minimum(first, second))
    high = np.where(second < 0, first, np.maximum(first, second))
    columns = np.arange(num_examples)
    # A flat take is several times faster than indexing [rows, columns]
    result = combine(
        before.reshape(-1).take(low * num_examples + columns), after.reshape(-1).take(high * num_examples + columns)
    )
    two = np.nonzero(high - low > 1)
    if len(two[0]):
        result[two] = combine(result[two], range_combine(values, low[two] + 1, high[two], two[1], combine, empty))
    return result


def range_combine(
    values: np.ndarray, start: np.ndarray, stop: np.ndarray, columns: np.ndarray, combine: np.ufunc, empty: float
) -> np.ndarray:
    """float64[K]: values[start[k]:stop[k], columns[k]] combined, for K ranges of models, from blocks of
    2^j consecutive models (a sparse table): log2(M) look-ups each, no subtraction."""
    total = np.full(len(start), empty)
    length = stop - start
    block = values
    for level in range(int(length.max()).bit_length()):
        if level:
            width = 1 << (level - 1)
            block = combine(block[:-width], block[width:])  # block[i]: models i .. i + 2^level − 1
        taken = (length >> level) & 1 == 1
        rows = np.minimum(start, len(block) - 1)
        total = np.where(taken, combine(total, block[rows, columns]), total)
        start = start + (taken << level)
    return total
