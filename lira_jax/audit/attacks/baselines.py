"""The baseline attacks, streamed over examples like LiRA (`lira_jax.audit.attacks.lira.lira`), and the
prediction-correctness rule.

Every function returns float32[T, N] for T targets (model indices), higher = more likely a member.
Scores φ: float32[M, N, V]; keep: bool[M, N]; logits: float16|float32[M, N, V, C]; labels: int[N].
A probability is always taken per view and the score averaged over views.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from lira_jax.audit.attacks.equalise import out_removals, out_shortfall
from lira_jax.audit.attacks.leave_out import combine_without, snap
from lira_jax.audit.inputs.checked import AttackInputs, AttackOptions, check_logits, check_scores_keep
from lira_jax.audit.metrics import decision_metrics
from lira_jax.audit.streaming import ExampleArray, check_finite, map_example_chunks, subset_models, within_float32
from lira_jax.errors import UserError

FROM_SCORES = ("loss", "calibrated_loss", "global_threshold")
FROM_LOGITS = ("confidence", "entropy", "modified_entropy", "correctness")


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
    reason = out_shortfall(keep, targets) if "calibrated_loss" in names else None
    if reason is not None:
        raise UserError(f"calibrated_loss {reason}")
    from_scores = [name for name in names if name in FROM_SCORES]
    from_logits = [name for name in names if name in FROM_LOGITS]
    if from_logits:
        if logits is None:
            raise UserError(f"{', '.join(from_logits)} need the full logits (logits.npy), which were not given")
        labels = check_logits(logits, labels, scores.shape)
    inputs = AttackInputs(
        scores, keep, targets, logits, labels, options=AttackOptions(chunk_examples=chunk_examples, workers=workers)
    )
    results = {}
    if from_scores:
        results.update(score_baselines(inputs, from_scores))
    if from_logits:
        results.update(logit_baselines(inputs, from_logits))
    return {name: results[name] for name in names}


def score_baselines(inputs: AttackInputs, names: Sequence[str]) -> dict[str, np.ndarray]:
    """The registry's baselines on scores: {name: float32[T, N]} for names of FROM_SCORES, in one pass."""
    return _from_scores(
        inputs.scores, inputs.keep, inputs.targets, names, inputs.options.chunk_examples, inputs.options.workers
    )


def logit_baselines(inputs: AttackInputs, names: Sequence[str]) -> dict[str, np.ndarray]:
    """The registry's baselines on logits: {name: float32[T, N]} for names of FROM_LOGITS, in one pass."""
    labels, targets, num_views = inputs.labels, inputs.targets, inputs.scores.shape[2]
    target_logits = subset_models(inputs.logits, targets)

    def work(start: int, stop: int, chunk: np.ndarray) -> dict[str, np.ndarray]:
        check_finite(chunk, "logits", start, target_logits)
        return _from_logits(chunk.astype(np.float64), labels[start:stop], names)

    bytes_per_example = 64 * len(targets) * num_views * inputs.logits.shape[-1]
    parts = map_example_chunks(
        work,
        [target_logits],
        inputs.scores.shape[1],
        bytes_per_example,
        inputs.options.chunk_examples,
        inputs.options.workers,
    )
    return {name: np.concatenate([part[name] for part in parts], axis=1) for name in names}


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
            chunk["calibrated_loss"] = _calibrated_loss(values, keep[:, start:stop], targets, start, own_log_p)
        return chunk

    num_models, num_examples, num_views = scores.shape
    parts = map_example_chunks(
        work, [scores], num_examples, 8 * num_views * (3 * num_models + 4 * len(targets)), chunk_examples, workers
    )
    return {
        name: within_float32(np.concatenate([part[name] for part in parts], axis=1)).astype(np.float32)
        for name in names
    }


def _calibrated_loss(
    values: np.ndarray, keep: np.ndarray, targets: np.ndarray, start: int, own_log_p: np.ndarray
) -> np.ndarray:
    """float64[T, n]: the mean over views of log p_y of the target (own_log_p [T, n, V]) minus its mean over
    the target's OUT shadows, on a chunk (values float32[M, n, V], keep bool[M, n] from example start); as
    both means are linear, the mean over views is taken first.

    The OUT set is LiRA's equalised one, as offline RMIA's (`equalise.out_removals`: one OUT shadow dropped
    where the OUT side is the larger, so that a member's mean is not over one shadow more than a
    non-member's), summed without subtracting the target's term, and the result is compared at
    `leave_out.RESOLUTION`: otherwise the rounding of that subtraction alone, which only non-members
    undergo, ranked members above or below non-members wherever outputs are equal (AUC 0.44 on identical
    models under --mask round:1)."""
    log_p = -np.logaddexp(0.0, -values.astype(np.float64)).mean(axis=-1)  # [M, n]
    is_out = ~keep
    first, second = out_removals(keep, targets, start)
    count = is_out.sum(axis=0) - (first >= 0) - (second >= 0)
    out_mean = combine_without(log_p * is_out, first, second, np.add, 0.0) / count
    return snap(own_log_p.mean(axis=-1) - out_mean)


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
    return {name: within_float32(values.mean(axis=-1)).astype(np.float32) for name, values in per_view.items()}


def labelled_right(
    logits: ExampleArray, labels: Any, targets: Sequence[int], *, view: int = 0, workers: int | None = None
) -> np.ndarray:
    """bool[T, N]: whether each target's top class under query view `view` is the example's label.

    logits: float[M, N, V, C]; targets: model indices. Ties in the logits go to the lower class index.
    """
    labels = check_logits(logits, labels, logits.shape[:3])
    if not 0 <= view < logits.shape[2]:
        raise UserError(f"view must lie in [0, {logits.shape[2]}), got {view}")
    return top_class_is_label(logits, labels, targets, view=view, workers=workers)


def top_class_is_label(
    logits: ExampleArray, labels: np.ndarray, targets: Sequence[int], *, view: int = 0, workers: int | None = None
) -> np.ndarray:
    """`labelled_right` on checked inputs (`lira_jax.audit.inputs.checked.check_logits`): bool[T, N]."""
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
