"""Equalised counts: each target's IN and OUT shadow sets made the same size, for all targets at once (LiRA's
sets, and the OUT sets of offline RMIA, calibrated_loss and label_only).

Why (DESIGN.md, "Scoring semantics"): with a balanced keep matrix a member of target t leaves M/2 − 1 IN
shadows and M/2 OUT, a non-member the reverse. That difference alone lowers LiRA on members under the
null (AUC about 0.46 at M = 16). So for each (target t, example n) whose shadow sets differ in size, one
shadow of the larger set is dropped, chosen by a seeded hash of (t, n). The rule looks only at the
shadows' counts, never at t's membership, so members and non-members stay exchangeable under the null,
for balanced and Bernoulli keep matrices alike.

Speed: each example's IN and OUT sets over all models are summarised once (sums, and the sorted values
a[p − 1], a[p], a[p + 1], a[p + 2] around the middle p = (k − 1) // 2), and each target's sets follow by
taking out at most two known values in O(1): its own score from the set that holds it, and the dropped
shadow's. Removing values v1 ≤ v2 of the set turns its sorted values a into b with
    b[i] = a[i] if v1 > a[i], else a[i + 1] if v2 > a[i + 1], else a[i + 2]
(equal values are interchangeable, so comparing values is as good as knowing ranks), and the new median
needs b at p − 1 and p only. With a balanced keep matrix every set loses exactly one value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_SEED = 0
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@dataclass
class SetStats:
    """The IN or the OUT set of every example of a chunk, over all models: size int[n], the others
    float64[n, V]. Sums are of φ − shift, shift being the set's middle value a[p] (keeps the variance
    accurate); low, middle, high, high2 are a[p − 1], a[p], a[p + 1], a[p + 2] of the sorted set (clamped
    to the set at its ends)."""

    size: np.ndarray
    shift: np.ndarray
    sum: np.ndarray
    sum_squares: np.ndarray
    low: np.ndarray
    middle: np.ndarray
    high: np.ndarray
    high2: np.ndarray


@dataclass
class Drops:
    """The shadow each (target, example) drops: model int64[T, n] (−1: none) and from_in bool[T, n]
    (dropped from the IN set; else from OUT where model >= 0)."""

    model: np.ndarray
    from_in: np.ndarray


@dataclass
class Removals:
    """The models each (target, example) takes out of the example's summarised IN and OUT sets (`SetStats`):
    per side the first and the second model removed, int64[T, n], −1 where none (a second only where there
    is a first). Equalised counts remove the target and the dropped shadow (`equalised_removals`), raw
    counts the target alone (`raw_removals`), the reference's counts the target and the shadows beyond its
    truncation (`lira_jax.audit.attacks.lira.truncation`)."""

    first_in: np.ndarray
    second_in: np.ndarray
    first_out: np.ndarray
    second_out: np.ndarray


@dataclass
class TargetSets:
    """Each target against its shadow sets: residual φ_t − μ, variance (ddof 0) and mean, float64[T, n, V]
    (the IN ones None offline, the residuals None without a centre, the means None unless asked for), and
    the sets' sizes int[T, n]."""

    residual_in: np.ndarray | None
    variance_in: np.ndarray | None
    residual_out: np.ndarray | None
    variance_out: np.ndarray
    size_in: np.ndarray
    size_out: np.ndarray
    mean_in: np.ndarray | None = None
    mean_out: np.ndarray | None = None


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser on uint64 arrays (wrapping arithmetic)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def drop_hash(seed: int, targets: np.ndarray, examples: np.ndarray) -> np.ndarray:
    """uint64[T, n]: a well-mixed hash of (seed, target, example), the same in any chunking."""
    seeded = np.array([seed % 2**64], np.uint64) * _GOLDEN  # arrays wrap silently; NumPy scalars warn
    base = _mix(seeded + np.asarray(targets, np.uint64)[:, None] + np.uint64(1))
    return _mix(base ^ (np.asarray(examples, np.uint64)[None, :] * _GOLDEN))


def side_order(keep: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(each example's models, IN ones then OUT ones, each in model order: int64[n * M], example after
    example, so that a side's j-th model is one look-up; each target's rank on its own side: int64[T, n])
    for keep bool[M, n] and targets int[T]."""
    is_in = keep[targets]
    models_by_side = np.argsort(~keep.T, axis=1, kind="stable").reshape(-1)
    in_before_target = np.cumsum(keep, axis=0, dtype=np.int64)[targets] - is_in  # IN models before the target
    return models_by_side, np.where(is_in, in_before_target, targets[:, None] - in_before_target)


def choose_drops(keep: np.ndarray, targets: np.ndarray, start: int = 0, seed: int = DEFAULT_SEED) -> Drops:
    """Which shadow each target drops on each example of a chunk, to make its two shadow sets equal in size.

    keep: bool[M, n] for examples start..start+n; targets: int[T]. With a IN and b OUT shadows (the
    models other than the target), a ≠ b drops one of the larger set: the j-th of its models in index
    order, j = hash(seed, target, example) mod its size.
    """
    num_models, num_examples = keep.shape
    targets = np.asarray(targets)
    is_in = keep[targets]  # [T, n]
    count_in = np.count_nonzero(keep, axis=0)
    shadows_in = count_in - is_in
    shadows_out = num_models - count_in - ~is_in
    from_in = shadows_in > shadows_out
    dropping = shadows_in != shadows_out
    side_size = np.where(from_in, shadows_in, shadows_out)
    hashes = drop_hash(seed, targets, np.arange(start, start + num_examples))
    rank = (hashes % np.maximum(side_size, 1).astype(np.uint64)).astype(np.int64)
    # The j-th shadow of the side is the j-th model of the whole side, or the next one past the target.
    models_by_side, target_rank = side_order(keep, targets)
    rank += (is_in == from_in) & (rank >= target_rank)
    position = rank + np.where(from_in, 0, count_in) + np.arange(num_examples) * num_models
    model = np.where(dropping, models_by_side.take(position, mode="clip"), -1)  # clip: where nothing drops
    return Drops(model=model, from_in=from_in & dropping)


def equalised_removals(keep: np.ndarray, targets: np.ndarray, start: int = 0, seed: int = DEFAULT_SEED) -> Removals:
    """Equalised counts: each target leaves the set that holds it and drops `choose_drops`' shadow from the
    larger set (keep: bool[M, n] for examples start..start+n; targets: int[T])."""
    drops = choose_drops(keep, targets, start, seed)
    is_in = keep[targets]
    removals = []
    for holds_target, drop_here in ((is_in, drops.from_in), (~is_in, (drops.model >= 0) & ~drops.from_in)):
        first = np.where(holds_target, targets[:, None], np.where(drop_here, drops.model, -1))
        removals += [first, np.where(holds_target & drop_here, drops.model, -1)]
    return Removals(*removals)


def equalised_sizes(keep: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(IN, OUT) set sizes int[T, N] of each (target, example) under equalised counts: the shadows besides
    the target, one fewer on the larger side (keep: bool[M, N]; targets: int[T])."""
    count_in = keep.sum(axis=0)
    is_in = keep[targets]
    sizes_in = count_in - is_in
    sizes_out = keep.shape[0] - count_in - ~is_in
    return sizes_in - (sizes_in > sizes_out), sizes_out - (sizes_out > sizes_in)


def out_removals(keep: np.ndarray, targets: np.ndarray, start: int) -> tuple[np.ndarray, np.ndarray]:
    """The equalised OUT sets of the attacks that read only OUT shadows (offline RMIA, calibrated_loss): the
    models each (target, example) of a chunk takes out of the example's OUT models, first and second,
    int64[T, n] (−1: none): the target where it is OUT, and the shadow `choose_drops` drops where the OUT
    side is the larger (keep: bool[M, n] for examples start..start+n). Why: with a balanced keep matrix a
    member of t has M/2 OUT shadows and a non-member M/2 − 1, so a mean over them would be less noisy for
    members; the drop looks only at the shadows' counts, so members and non-members stay exchangeable."""
    drops = choose_drops(keep, targets, start)
    is_out = ~keep[targets]
    drop_out = (drops.model >= 0) & ~drops.from_in
    first = np.where(is_out, targets[:, None], np.where(drop_out, drops.model, -1))
    return first, np.where(is_out & drop_out, drops.model, -1)


def raw_removals(keep: np.ndarray, targets: np.ndarray) -> Removals:
    """Raw counts: each target leaves the set that holds it, nothing else (keep: bool[M, n]; targets: int[T])."""
    is_in = keep[targets]
    none = np.full(is_in.shape, -1)
    column = np.broadcast_to(targets[:, None], is_in.shape)
    return Removals(np.where(is_in, column, -1), none, np.where(is_in, -1, column), none)


def target_sets(
    stats_in: SetStats,
    stats_out: SetStats,
    values: np.ndarray,
    targets: np.ndarray,
    removals: Removals,
    centre: str | None,
    online: bool,
    means: bool = False,
) -> TargetSets:
    """Each target's IN and OUT sets: the summarised sets without the models `removals` names.

    values: float32[M, n, V] every model's scores on the chunk; targets: int[T]; centre: "median", "mean"
    or None (variances only); means: also each set's mean. The IN statistics are computed only `online`.
    """
    examples = np.arange(values.shape[1])
    target_values = None if centre is None else values[targets].astype(np.float64)
    fields: list = []
    sizes = []
    set_means = []
    for stats, first_model, second_model, wanted in (
        (stats_in, removals.first_in, removals.second_in, online),
        (stats_out, removals.first_out, removals.second_out, True),
    ):
        removed = (first_model >= 0).astype(np.int64) + (second_model >= 0)
        sizes.append(stats.size[None, :] - removed)
        if not wanted:
            fields += [None, None]
            set_means.append(None)
            continue
        # Gathering the values to remove from the float32 scores is cheaper than selecting among float64 copies.
        first = values[np.maximum(first_model, 0), examples].astype(np.float64)
        two = np.nonzero(removed == 2)
        second = values[second_model[two], two[1]].astype(np.float64)
        centre_of, variance, mean = _without(stats, first, second, two, removed, centre, means)
        fields += [None if centre is None else target_values - centre_of, variance]
        set_means.append(mean)
    return TargetSets(*fields, size_in=sizes[0], size_out=sizes[1], mean_in=set_means[0], mean_out=set_means[1])


def _without(stats, first, second, two, removed, centre, means=False):
    """(centre, variance, mean) float64[T, n, V] of one set without `first` float64[T, n, V] where `removed`
    (int[T, n]: 0, 1 or 2) is at least 1, and also without `second` float64[K, V] at the K (target, example)
    pairs `two` (index arrays) where it is 2; the centre None if `centre` is, the mean None unless `means`."""
    size = np.maximum(stats.size[None, :] - removed, 1)
    # With a balanced keep matrix all sizes are equal: dividing by a scalar runs as one contiguous loop.
    size = float(size.flat[0]) if (size == size.flat[0]).all() else size[..., None].astype(np.float64)
    # In place, and masked only where some (target, example) removes nothing: these float64 [T, n, V] passes
    # are much of equalised LiRA's time, and with a balanced keep matrix every set loses a value.
    deviation = first - stats.shift
    one = (removed >= 1)[..., None]
    every_one = bool(one.all())
    if not every_one:
        deviation *= one
    total = stats.sum - deviation
    np.square(deviation, out=deviation)
    squares = np.subtract(stats.sum_squares, deviation, out=deviation)
    if len(second):
        second_deviation = second - stats.shift[two[1]]
        total[two] -= second_deviation
        squares[two] -= second_deviation * second_deviation
    mean_offset = np.divide(total, size, out=total)
    variance = np.divide(squares, size, out=squares)
    variance -= np.square(mean_offset)
    np.maximum(variance, 0.0, out=variance)
    mean = stats.shift + mean_offset if means or centre == "mean" else None
    reported = mean if means else None
    if centre is None:
        return None, variance, reported
    if centre == "mean":
        return mean, variance, reported
    median = _median_without_one(stats, first)
    if not every_one:
        median = np.where(one, median, _whole_median(stats))
    if len(second):
        pair = np.sort(np.stack([first[two], second]), axis=0)
        median[two] = _median_without_two(stats, two[1], pair[0], pair[1])
    return median, variance, reported


def _whole_median(stats: SetStats) -> np.ndarray:
    odd = (stats.size % 2 == 1)[:, None]
    return np.where(odd, stats.middle, (stats.middle + stats.high) / 2)


def _median_without_one(stats: SetStats, value: np.ndarray) -> np.ndarray:
    """Median [T, n, V] of each set without one of its values `value` [T, n, V]: of size k = 2p + 2 it
    keeps b[p], of size 2p + 1 (b[p − 1] + b[p]) / 2, b[i] = a[i] if value > a[i] else a[i + 1]; that is,
    by where the value lies against a[p], one of three candidates."""
    odd = (stats.size % 2 == 1)[:, None]
    low, middle, high = stats.low, stats.middle, stats.high
    below = np.where(odd, (middle + high) / 2, high)
    at = np.where(odd, (low + high) / 2, high)
    above = np.where(odd, (low + middle) / 2, middle)
    # Picking one of three per element: a flat take is several times faster than nested np.where.
    candidates = np.stack([below, at, above], axis=-1).reshape(-1)  # [n * V * 3], shared by the targets
    choice = np.subtract(value > middle, value < middle, dtype=np.intp)  # -1, 0, 1
    choice += np.arange(1, candidates.size, 3).reshape(middle.shape)
    return candidates.take(choice)


def _median_without_two(stats: SetStats, examples: np.ndarray, low_value, high_value) -> np.ndarray:
    """Median [K, V] of the sets of `examples` (int[K]) without two of their values low_value <= high_value
    [K, V]: size 2p + 1 keeps b[p − 1]; size 2p + 2, (b[p − 1] + b[p]) / 2."""
    a = [field[examples] for field in (stats.low, stats.middle, stats.high, stats.high2)]  # a[p - 1 + i]

    def b(i: int) -> np.ndarray:  # b[p - 1 + i] for i in 0, 1
        return np.where(low_value > a[i], a[i], np.where(high_value > a[i + 1], a[i + 1], a[i + 2]))

    odd = (stats.size[examples] % 2 == 1)[:, None]
    return np.where(odd, b(0), (b(0) + b(1)) / 2)


def out_shortfall(keep: np.ndarray, targets: np.ndarray) -> str | None:
    """Why an attack on equalised OUT sets (offline RMIA, calibrated_loss) cannot score these inputs, or None:
    some (target, example) has no OUT shadow left (keep bool[M, N], targets int[T])."""
    if equalised_sizes(keep, targets)[1].min() < 1:
        return "needs ≥ 1 OUT shadow per example besides each target (after equalised counts)"
    return None
