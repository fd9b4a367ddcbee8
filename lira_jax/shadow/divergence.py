"""Diverged models: a model whose query logits are not all finite is never marked done (store.RunFolder
records it as diverged), never attacked, and the run says so and what to change."""

from lira_jax.errors import UserError, compact_ranges
from lira_jax.store import RunFolder


def refuse_diverged(run: RunFolder) -> None:
    """UserError naming the run's diverged models, if any."""
    diverged = run.diverged()
    if diverged:
        raise UserError(
            f"model(s) {compact_ranges(diverged)} diverged: their query logits are not all finite, so they are"
            " not marked done and nothing is attacked. Train again into a new --out with a lower"
            " train.learning_rate (or more train.warmup_epochs, or train.precision = 'float32'; with"
            " query.logits_dtype = 'float16', logits beyond 65504 overflow: use 'float32')"
        )
