"""The reference's counts (`--lira-counts reference`): plot.py's truncated shadow lists, for all targets at once.

The LiRA reference code's plot.py (Carlini et al. 2022, tensorflow/privacy research/mi_lira_2021) scores a
target against every other model. For each example it lists the IN shadows' scores and the OUT shadows'
in model order, then truncates every list to the smallest count over all examples. For target t and side
S (IN or OUT), with S_n the models on that side of example n, that is

    K_t = min over n of (|S_n| − [t ∈ S_n]),   t's set on n = the first K_t models of S_n \\ {t}.

K_t is one size for all of t's examples. In terms of the summarised sets (`equalise.SetStats`), each
example's S_n is summarised over its first b_n = min(|S_n|, L) models, L = max_t K_t + 1, and target t's
set is that prefix without t (where t is in it) and without the prefix's last models beyond K_t. As
K_t is c − 1 or c for c = min_n |S_n|, b_n − K_t is at most 2: at most two removals per set, the case the
O(1) statistics of `equalise.target_sets` handle. With a balanced keep matrix nothing is truncated but the
one shadow that makes the sizes equal: the last in model order of the larger set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lira_jax.audit.attacks.equalise import Removals, side_order


@dataclass(frozen=True)
class Truncation:
    """Each target's set size on either side, int64[T] (K_t above), and the prefix summarised per example
    (L above; a model count)."""

    size_in: np.ndarray
    size_out: np.ndarray

    @property
    def limits(self) -> tuple[int, int]:
        """(L_in, L_out): how many models of each side `_example_set_stats` summarises, first in model order."""
        return int(self.size_in.max()) + 1, int(self.size_out.max()) + 1


def truncation(keep: np.ndarray, targets: np.ndarray) -> Truncation:
    """The reference's set sizes for keep bool[M, N] (every example) and targets int[T]."""
    count_in = keep.sum(axis=0)
    is_in = keep[targets]
    size_in = (count_in[None, :] - is_in).min(axis=1)
    size_out = ((keep.shape[0] - count_in)[None, :] - ~is_in).min(axis=1)
    return Truncation(size_in=size_in.astype(np.int64), size_out=size_out.astype(np.int64))


def reference_removals(keep: np.ndarray, targets: np.ndarray, sizes: Truncation) -> Removals:
    """What each target removes from each example's summarised prefixes (`Truncation.limits`) to keep its
    first sizes.size_in IN and sizes.size_out OUT shadows. keep: bool[M, n] for a chunk of examples;
    targets: int[T]."""
    num_models, num_examples = keep.shape
    is_in = keep[targets]  # [T, n]
    count_in = keep.sum(axis=0)
    models_by_side, target_rank = side_order(keep, targets)
    row_start = np.arange(num_examples) * num_models
    removals = []
    sides = (
        (is_in, count_in, 0, sizes.size_in, sizes.limits[0]),
        (~is_in, num_models - count_in, count_in, sizes.size_out, sizes.limits[1]),
    )
    for holds_target, count, offset, size, limit in sides:
        prefix = np.minimum(count, limit)  # [n]
        in_prefix = holds_target & (target_rank < prefix)
        beyond = prefix[None, :] - size[:, None] - in_prefix  # shadows past the size, at the prefix's end
        # The prefix's last two models; a target among them is skipped (it is removed as the target).
        last, second_last = (
            models_by_side.take(row_start + offset + np.maximum(prefix - back, 0), mode="clip") for back in (1, 2)
        )
        first_beyond = np.where(last[None, :] == targets[:, None], second_last[None, :], last[None, :])
        column = np.broadcast_to(targets[:, None], is_in.shape)
        first = np.where(in_prefix, column, np.where(beyond >= 1, first_beyond, -1))
        second = np.where(in_prefix, np.where(beyond >= 1, first_beyond, -1), np.where(beyond >= 2, second_last, -1))
        removals += [first, second]
    return Removals(*removals)
