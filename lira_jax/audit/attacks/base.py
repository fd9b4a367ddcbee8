"""BASE (Lassila, Östman, Ngo and Graell i Amat, "Practical Bayes-Optimal Membership Inference Attacks",
arXiv 2505.24089, 2025), online, streamed over examples like LiRA (`lira_jax.audit.attacks.lira.lira`).

BASE approximates the Bayes-optimal test by the target's log-probability of the label against a log-sum-exp
threshold over shadow models: per view v,

    log p_t(x) − log (1 / (M − 1)) Σ_{m ≠ t} p_m(x),

averaged over views, p_m = σ(φ_m) the probability of x's label (scores suffice). Its temperature is 1: φ
holds the logits' margin only, so the paper's tempered softmax (LeakPro's default T = 2) would need the
logits. Every shadow model is counted, IN and OUT alike, as RMIA online counts them: with one view the
score is RMIA online's log ratio log p_t(x) / Pr(x) itself, which RMIA then ranks among a population's
(for one target a monotone map: the equivalence the BASE paper shows); with several views BASE averages
the per-view log ratios, RMIA the probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lira_jax.audit.attacks.leave_out import combine_without
from lira_jax.audit.attacks.lira.lira import mean_over_views
from lira_jax.audit.attacks.rmia import TINY_PROBABILITY
from lira_jax.audit.inputs.checked import AttackInputs
from lira_jax.audit.streaming import check_finite, map_example_chunks


def base_family(inputs: AttackInputs, names: Sequence[str]) -> dict[str, np.ndarray]:
    """The registry's BASE: {"base": float32[T, N]} from scores float[M, N, V] (every model but the target
    a shadow, so it needs M >= 2 only)."""
    scores, targets = inputs.scores, inputs.targets
    num_models, num_examples, num_views = scores.shape

    def work(start: int, stop: int, values: np.ndarray) -> np.ndarray:
        check_finite(values, "scores", start, scores)
        log_p = -np.logaddexp(0.0, -values.astype(np.float64)).reshape(num_models, -1)  # log σ(φ), [M, n·V]
        # Relative to the largest log p of each (example, view): equal scores give exactly 1 each, so every
        # tie scores exactly 0. The sums without each target's own term are prefix and suffix sums (no
        # cancellation); only where the other terms underflow are they taken in log space.
        largest = log_p.max(axis=0)
        relative = log_p - largest
        without = np.broadcast_to(targets[:, None], (len(targets), relative.shape[1]))
        none = np.full(without.shape, -1)
        sums = combine_without(np.exp(relative), without, none, np.add, 0.0)
        if sums.min() >= TINY_PROBABILITY:
            others = np.log(sums)
        else:
            others = combine_without(relative, without, none, np.logaddexp, -np.inf)
        score = relative[targets] - others + np.log(num_models - 1)
        return mean_over_views(score.reshape(len(targets), stop - start, num_views)).astype(np.float32)

    bytes_per_example = 8 * num_views * (4 * num_models + 3 * len(targets))
    parts = map_example_chunks(
        work, [scores], num_examples, bytes_per_example, inputs.options.chunk_examples, inputs.options.workers
    )
    return {name: np.concatenate(parts, axis=1) for name in names}
