"""RMIA and the baseline attacks, streamed over examples like LiRA (`lira_jax.audit.scoring`).

Every function returns float32[T, N] for T targets (model indices), higher = more likely a member.
Scores φ: float32[M, N, V]; keep: bool[M, N]; logits: float16|float32[M, N, V, C]; labels: int[N].
A probability is always taken per view and the score averaged over views.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from scipy.special import expit

from lira_jax.audit.metrics import decision_metrics
from lira_jax.audit.streaming import (
    ExampleArray,
    check_finite,
    check_scores_keep,
    check_shadows,
    map_example_chunks,
    subset_models,
)
from lira_jax.errors import UserError

FROM_SCORES = ("loss", "calibrated_loss", "global_threshold")
FROM_LOGITS = ("confidence", "entropy", "modified_entropy", "correctness")


# ---------------------------------------------------------------------------------------------------
# RMIA (Zarifzadeh et al., ICML 2024)


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
    num_models, num_examples, num_views = scores.shape
    in_population = _population_mask(population, num_examples)

    def work(start: int, stop: int, values: np.ndarray) -> np.ndarray:
        check_finite(values, "scores", start, scores)
        probability = expit(values.astype(np.float64)).mean(axis=-1)  # [M, n]
        own = probability[targets]
        if online:
            reference = (probability.sum(axis=0) - own) / (num_models - 1)
        else:
            is_out = ~keep[:, start:stop]
            target_out = is_out[targets]
            out_mean = ((probability * is_out).sum(axis=0) - own * target_out) / (is_out.sum(axis=0) - target_out)
            reference = ((1 + a) * out_mean + (1 - a)) / 2
        return own / np.maximum(reference, np.finfo(np.float64).tiny)

    ratios = np.concatenate(
        map_example_chunks(work, [scores], num_examples, 16 * num_models * num_views, chunk_examples, workers), axis=1
    )  # [T, N]
    result = np.empty((len(targets), num_examples), dtype=np.float32)
    for row, target in enumerate(targets):
        population_indices = np.flatnonzero(in_population & ~keep[target])
        if len(population_indices) < 2:
            raise UserError(f"RMIA needs 2 population examples outside target {target}'s training set")
        order = np.argsort(ratios[row, population_indices], kind="stable")
        own = np.full(num_examples, -1)
        own[population_indices[order]] = np.arange(len(order))
        # LR(x, z) >= gamma  <=>  ratio_z <= ratio_x / gamma, ratios being positive
        result[row] = _fraction(ratios[row, population_indices[order]], ratios[row] / gamma, own)
    return result


def _fraction(reference_ratios: np.ndarray, scaled: np.ndarray, own: np.ndarray) -> np.ndarray:
    """float64[N]: the fraction of population ratios <= scaled[x] (LR(x, z) >= gamma), x itself left out of
    its own population, plus where x lies between its two neighbouring population ratios (in log space).

    reference_ratios: float64[K] sorted; scaled: ratio_x / gamma, float64[N]; own: int[N], x's index in
    reference_ratios or -1. Why the position: the paper's fraction has a resolution of 1 / K; on digits the
    examples beyond the largest ratio tie at 1.0 and alone exceed 0.1% of the non-members, so TPR at 0.1%
    FPR read 0. The position (in [0, 0.999]) breaks ties by RMIA's own statistic without reordering two
    examples the fraction tells apart: floor(score * size) / size is the fraction. Why x is left out: a
    non-member is one of the population, so it could never pass the largest population ratio while a
    member could, which put members alone at the top even when membership carries no signal.
    """
    is_own = own >= 0
    logs = np.log(reference_ratios)
    value = np.log(scaled)
    below = np.searchsorted(reference_ratios, scaled, side="right")
    below = below - (is_own & (reference_ratios[np.maximum(own, 0)] <= scaled))
    size = len(reference_ratios) - is_own

    def log_ratio_at(position: np.ndarray) -> np.ndarray:  # the position-th ratio once x's own is removed
        return logs[position + (is_own & (position >= own))]

    lower = log_ratio_at(np.maximum(below - 1, 0))
    upper = log_ratio_at(np.minimum(below, size - 1))
    gap = upper - lower
    inside = np.divide(value - lower, gap, out=np.zeros_like(gap), where=gap > 0)  # equal neighbours: a tie
    position = np.where(
        below == 0,
        np.exp(value - log_ratio_at(np.zeros_like(below))),
        np.where(below == size, 1 - np.exp(log_ratio_at(size - 1) - value), inside),
    )
    return (below + np.clip(position, 0.0, 0.999)) / size


def _population_mask(population: Any, num_examples: int) -> np.ndarray:
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


# ---------------------------------------------------------------------------------------------------
# Baselines


def baseline_scores(
    scores: ExampleArray,
    keep: np.ndarray,
    targets: Sequence[int] | None = None,
    names: Iterable[str] = FROM_SCORES,
    *,
    logits: ExampleArray | None = None,
    labels: np.ndarray | None = None,
    chunk_examples: int | None = None,
    workers: int | None = None,
) -> dict[str, np.ndarray]:
    """Baseline scores {name: float32[T, N]}, each the mean over views of a per-view score:

    loss: log p_y = −cross-entropy (Yeom et al.); calibrated_loss: log p_y of the target minus its
    mean over the OUT shadow models (Watson et al.); global_threshold: φ itself. These read scores.
    From logits (with labels): confidence: max_j p_j; entropy: Σ_j p_j log p_j (= −entropy);
    modified_entropy: −Mentr = (1 − p_y) log p_y + Σ_{j≠y} p_j log(1 − p_j) (Song and Mittal);
    correctness: 1 if the top class is y.
    """
    names = list(names)
    unknown = [name for name in names if name not in FROM_SCORES + FROM_LOGITS]
    if unknown:
        raise UserError(f"unknown baseline(s) {unknown}; known: {list(FROM_SCORES + FROM_LOGITS)}")
    keep, targets = check_scores_keep(scores, keep, targets)
    if "calibrated_loss" in names:
        check_shadows(keep, targets, need_in=False, need_out=True, attack="calibrated_loss")
    num_models, num_examples, num_views = scores.shape
    results = {}
    from_scores = [name for name in names if name in FROM_SCORES]
    if from_scores:
        results.update(_from_scores(scores, keep, targets, from_scores, chunk_examples, workers))
    from_logits = [name for name in names if name in FROM_LOGITS]
    if from_logits:
        if logits is None:
            raise UserError(f"{', '.join(from_logits)} need the full logits (logits.npy), which were not given")
        labels = check_logits(logits, labels, scores.shape)
        target_logits = subset_models(logits, targets)

        def work(start: int, stop: int, chunk: np.ndarray) -> dict[str, np.ndarray]:
            check_finite(chunk, "logits", start, target_logits)
            return _from_logits(chunk.astype(np.float64), labels[start:stop], from_logits)

        bytes_per_example = 64 * len(targets) * num_views * logits.shape[-1]
        parts = map_example_chunks(work, [target_logits], num_examples, bytes_per_example, chunk_examples, workers)
        results.update({name: np.concatenate([part[name] for part in parts], axis=1) for name in from_logits})
    return {name: results[name] for name in names}


def check_logits(logits: Any, labels: Any, scores_shape: tuple[int, ...]) -> np.ndarray:
    """Validates logits float[M, N, V, C] (C >= 2) against scores [M, N, V]; returns labels as int64[N]."""
    if (
        getattr(logits, "ndim", None) != 4
        or tuple(logits.shape[:3]) != tuple(scores_shape)
        or np.dtype(logits.dtype).kind != "f"
        or logits.shape[3] < 2
    ):
        raise UserError(
            f"logits must be floating point [M, N, V, C] = {list(scores_shape)} + [C >= 2] to match "
            f"the scores, got {getattr(logits, 'dtype', '?')}{list(getattr(logits, 'shape', []))}"
        )
    if labels is None:
        raise UserError("attacks on logits need the labels")
    labels = np.asarray(labels)
    num_classes = logits.shape[3]
    if labels.shape != (scores_shape[1],) or labels.dtype.kind not in "iu":
        raise UserError(f"labels must be integers [N] = [{scores_shape[1]}], got {labels.dtype}{list(labels.shape)}")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise UserError(
            f"labels must lie in [0, {num_classes}) for logits with {num_classes} classes, "
            f"got {labels.min()}..{labels.max()}"
        )
    return labels.astype(np.int64)


def _from_scores(scores, keep, targets, names, chunk_examples, workers) -> dict[str, np.ndarray]:
    def work(start: int, stop: int, values: np.ndarray) -> dict[str, np.ndarray]:
        check_finite(values, "scores", start, scores)
        own = values[targets].astype(np.float64)  # [T, n, V]
        chunk = {}
        if "global_threshold" in names:
            chunk["global_threshold"] = own.mean(axis=-1)
        if "loss" in names or "calibrated_loss" in names:
            own_log_p = -np.logaddexp(0.0, -own)
            chunk["loss"] = own_log_p.mean(axis=-1)
        if "calibrated_loss" in names:
            log_p = -np.logaddexp(0.0, -values.astype(np.float64))  # [M, n, V]
            is_out = ~keep[:, start:stop]
            target_out = is_out[targets][:, :, None]
            out_sum = np.einsum("mn,mnv->nv", is_out.astype(np.float64), log_p) - own_log_p * target_out
            out_mean = out_sum / (is_out.sum(axis=0)[:, None] - target_out)
            chunk["calibrated_loss"] = (own_log_p - out_mean).mean(axis=-1)
        return chunk

    num_models, num_examples, num_views = scores.shape
    parts = map_example_chunks(
        work, [scores], num_examples, 8 * num_views * (3 * num_models + 4 * len(targets)), chunk_examples, workers
    )
    return {name: np.concatenate([part[name] for part in parts], axis=1).astype(np.float32) for name in names}


def _class_log_probabilities(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(log p_j, log(1 − p_j)) for every class j of logits float64[..., C], both finite and accurate.

    Through φ_j = z_j − logsumexp_{i≠j} z_i: log p_j = −softplus(−φ_j), log(1 − p_j) = −softplus(φ_j).
    The sum over i ≠ j is the full sum less term j, except for the top class, summed without it.
    """
    top = logits.argmax(axis=-1)[..., None]
    largest = np.take_along_axis(logits, top, axis=-1)
    terms = np.exp(logits - largest)
    others = np.log(np.maximum(terms.sum(axis=-1, keepdims=True) - terms, 1.0)) + largest
    without_top = logits.copy()
    np.put_along_axis(without_top, top, -np.inf, axis=-1)
    second = without_top.max(axis=-1, keepdims=True)
    others_of_top = np.log(np.exp(without_top - second).sum(axis=-1, keepdims=True)) + second
    np.put_along_axis(others, top, others_of_top, axis=-1)
    phi = logits - others
    return -np.logaddexp(0.0, -phi), -np.logaddexp(0.0, phi)


def _from_logits(logits: np.ndarray, labels: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    """Per-view scores averaged over views: logits float64[T, n, V, C], labels [n] -> {name: float32[T, n]}."""
    log_p, log_not_p = _class_log_probabilities(logits)
    p = np.exp(log_p)
    per_view = {}
    if "confidence" in names:
        per_view["confidence"] = p.max(axis=-1)
    if "entropy" in names:
        per_view["entropy"] = (p * log_p).sum(axis=-1)
    if "modified_entropy" in names:
        is_label = labels[:, None, None] == np.arange(logits.shape[-1])
        per_view["modified_entropy"] = np.where(is_label, np.exp(log_not_p) * log_p, p * log_not_p).sum(axis=-1)
    if "correctness" in names:
        per_view["correctness"] = (logits.argmax(axis=-1) == labels[:, None]).astype(np.float64)
    return {name: values.mean(axis=-1).astype(np.float32) for name, values in per_view.items()}


# ---------------------------------------------------------------------------------------------------
# The prediction-correctness rule


def labelled_right(
    logits: ExampleArray, labels: Any, targets: Sequence[int], *, view: int = 0, workers: int | None = None
) -> np.ndarray:
    """bool[T, N]: whether each target's top class under query view `view` is the example's label.

    logits: float[M, N, V, C]; targets: model indices. Ties in the logits go to the lower class index.
    """
    labels = check_logits(logits, labels, logits.shape[:3])
    if not 0 <= view < logits.shape[2]:
        raise UserError(f"view must lie in [0, {logits.shape[2]}), got {view}")
    target_logits = subset_models(logits, targets)

    def work(start: int, stop: int, chunk: np.ndarray) -> np.ndarray:
        check_finite(chunk, "logits", start, target_logits)
        return chunk[:, :, view].argmax(axis=-1) == labels[start:stop]

    bytes_per_example = 8 * len(targets) * logits.shape[2] * logits.shape[3]
    return np.concatenate(
        map_example_chunks(work, [target_logits], logits.shape[1], bytes_per_example, workers=workers), axis=1
    )


def correctness_rule(membership: Any, correct: Any) -> dict[str, Any]:
    """The rule "labelled right => member" (Irolla), pooled over targets, next to what the gap predicts.

    membership, correct: bool[T, N] (target model t trained on / labels right example n). Returns the
    rule's `decision_metrics` (accuracy, balanced_accuracy, precision, recall, counts) and
    train_accuracy, test_accuracy: means over targets of each target's accuracy on its members and on its
    non-members; generalisation_gap = train − test; gap_accuracy = (1 + gap) / 2; balanced_counts: every
    target has n members and n non-members, with the same n for all. Then accuracy = balanced_accuracy
    = gap_accuracy, exactly: each is the mean over targets of (members right + non-members wrong) / 2n.
    Otherwise balanced_accuracy is (1 + gap) / 2 of the pooled accuracies, which weight targets by size.
    """
    membership, correct = np.asarray(membership), np.asarray(correct)
    rule = decision_metrics(membership, correct)
    members, nonmembers = membership.sum(axis=1), (~membership).sum(axis=1)
    if membership.ndim != 2 or not (members > 0).all() or not (nonmembers > 0).all():
        raise UserError("the correctness rule needs [T, N] arrays with members and non-members for every target")
    train = float(np.mean((correct & membership).sum(axis=1) / members))
    test = float(np.mean((correct & ~membership).sum(axis=1) / nonmembers))
    return {
        **rule,
        "train_accuracy": train,
        "test_accuracy": test,
        "generalisation_gap": train - test,
        "gap_accuracy": (1 + train - test) / 2,
        "balanced_counts": bool((members == nonmembers).all() and len(np.unique(members)) == 1),
    }
