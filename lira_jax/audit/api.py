"""`lira_jax.audit_logits`: every attack on logits from any framework, in one call.

    audit = lira_jax.audit_logits(logits, keep, labels)     # logits [M, N, C] or [M, N, V, C]
    print(audit.table())
    audit.to_html("report.html")

The same evaluation as `python -m lira_jax.attack` on a folder holding the same arrays, so the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy.typing as npt

from lira_jax.audit.classifiers import MAX_ROWS
from lira_jax.audit.evaluate import evaluate_inputs
from lira_jax.audit.inputs import COUNTS, EQUALISED, AttackOptions
from lira_jax.audit.normalise import normalise
from lira_jax.audit.phi import streamed_phi
from lira_jax.audit.registry import check_inputs, choose_attacks
from lira_jax.audit.result import Audit
from lira_jax.audit.targets import parse_targets
from lira_jax.errors import UserError


def audit_logits(
    logits: npt.ArrayLike,
    keep: npt.ArrayLike,
    labels: npt.ArrayLike,
    *,
    attacks: Sequence[str] | None = None,
    targets: str | Sequence[int] = "all",
    views: Sequence[int] | None = None,
    lira_centre: str = "median",
    lira_counts: str = EQUALISED,
    rmia_a: float = 0.3,
    delta: float = 1e-5,
    classifier_rows: int = MAX_ROWS,
    title: str = "audit",
) -> Audit:
    """Scores `attacks` (default: every attack that needs no second run) with each of `targets` as the
    target and all other models as its shadows, pooled into one ROC per attack.

    logits: float16|32|64 [M, N, C] or [M, N, V, C] (NumPy, a memmap, or a CPU PyTorch tensor; never copied
    whole: φ is computed chunk by chunk); keep: bool or 0/1 [M, N], keep[m, n] = model m trained on example n;
    labels: any integer dtype [N]; targets: "all", "last", "I,J,...", "A:B" or model indices; views: the
    query views to use (default all); lira_counts: "equalised" IN and OUT shadow counts (default), "raw" or
    "reference" (the reference code's plot.py: sets truncated in model order, its fixed variance).
    Returns an `Audit` (.metrics, .examples, .table(), .plot_roc(path),
    .to_html(path)). Bad input raises `lira_jax.errors.UserError` with one line naming the problem.
    """
    inputs = normalise(logits, keep, labels, views)
    models = list(range(inputs.keep.shape[0]))
    target_ids = parse_targets(targets, models) if isinstance(targets, str) else _target_list(targets, models)
    attacks = choose_attacks(None if attacks is None else list(attacks), Path("logits"), True, None, False)
    if lira_counts not in COUNTS:
        raise UserError(f"lira_counts must be one of {', '.join(COUNTS)}, got {lira_counts!r}")
    options = AttackOptions(
        lira_centre=lira_centre, lira_counts=lira_counts, rmia_a=rmia_a, classifier_rows=classifier_rows
    )
    checked = check_inputs(
        streamed_phi(inputs.logits, inputs.labels),
        inputs.keep,
        target_ids,
        attacks,
        logits=inputs.logits,
        labels=inputs.labels,
        options=options,
    )
    return evaluate_inputs(checked, attacks, target_ids, delta=delta, title=title)


def _target_list(targets: Sequence[int], models: list[int]) -> list[int]:
    chosen = [int(target) for target in targets]
    if not chosen or len(set(chosen)) != len(chosen) or not set(chosen) <= set(models):
        raise UserError(f"targets must be distinct model indices in [0, {len(models)}), got {chosen}")
    return chosen
