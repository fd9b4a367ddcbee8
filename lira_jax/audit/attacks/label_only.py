"""The label-only attack: hard labels under each query view (Choquette-Choo et al., ICML 2021,
"Label-Only Membership Inference Attacks", the data-augmentation attack), calibrated by the OUT shadows.

For a target that answers with a label only, the signal is how robustly it labels x right under the
augmentations (the run's query views): members are labelled right under more of them. Per model m,
right_m(x) = the fraction of views v with argmax_j logits[m, x, v, j] = y (ties: the lower class index),
and the score is

    right_t(x) − mean_{m ∈ OUT(t, x)} right_m(x),

the target's robustness less what models that never saw x get (difficulty calibration over calibrated_loss's
equalised OUT set, so that members and non-members average over as many shadows; this replaces the paper's
threshold fitted on shadows). It reads the logits only through their
argmax, so it also runs on label-masked outputs. With a single view the score is the correctness baseline
calibrated, not this attack: not applicable.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lira_jax.audit.attacks.equalise import out_removals
from lira_jax.audit.attacks.leave_out import combine_without
from lira_jax.audit.inputs.checked import AttackInputs, NotApplicable
from lira_jax.audit.streaming import check_finite, map_example_chunks

MIN_VIEWS = 2


def label_only_family(inputs: AttackInputs, names: Sequence[str]) -> dict[str, np.ndarray | NotApplicable]:
    """The registry's label-only attack: {"label_only": float32[T, N]} from logits float[M, N, V, C] and
    labels int[N] (an OUT shadow for every example, checked); NotApplicable with fewer than MIN_VIEWS views."""
    logits, labels, keep, targets = inputs.logits, inputs.labels, inputs.keep, inputs.targets
    num_models, num_examples, num_views, num_classes = logits.shape
    if num_views < MIN_VIEWS:
        reason = NotApplicable(f"needs ≥ {MIN_VIEWS} query views (augmentations); the run has {num_views}")
        return {name: reason for name in names}

    def work(start: int, stop: int, chunk: np.ndarray) -> np.ndarray:
        check_finite(chunk, "logits", start, logits)
        right = (chunk.argmax(axis=-1) == labels[start:stop, None]).mean(axis=-1)  # [M, n]
        keep_chunk = keep[:, start:stop]
        is_out = ~keep_chunk
        first, second = out_removals(keep_chunk, targets, start)  # calibrated_loss's equalised OUT set
        count = is_out.sum(axis=0) - (first >= 0) - (second >= 0)
        out_mean = combine_without(right * is_out, first, second, np.add, 0.0) / count
        return (right[targets] - out_mean).astype(np.float32)

    bytes_per_example = num_models * num_views * (num_classes * np.dtype(logits.dtype).itemsize + 16)
    parts = map_example_chunks(
        work, [logits], num_examples, bytes_per_example, inputs.options.chunk_examples, inputs.options.workers
    )
    return {name: np.concatenate(parts, axis=1) for name in names}
