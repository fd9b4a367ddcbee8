"""`lira_jax.audit_logits`: every attack on logits from any framework, in one call.

    audit = lira_jax.audit_logits(logits, keep, labels)     # logits [M, N, C] or [M, N, V, C]
    print(audit.table())
    audit.to_html("report.html")

The same evaluation as `python -m lira_jax.attack` on a folder holding the same arrays, so the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from lira_jax.audit.attacks.classifiers import MAX_ROWS
from lira_jax.audit.evaluate import evaluate_inputs
from lira_jax.audit.inputs import arguments
from lira_jax.audit.inputs.arguments import as_numpy
from lira_jax.audit.inputs.checked import COUNTS, EQUALISED, AttackOptions
from lira_jax.audit.inputs.normalise import NormalisedInputs, normalise, normalise_logits
from lira_jax.audit.inputs.phi import streamed_phi
from lira_jax.audit.inputs.target_model import appended, check_target_model
from lira_jax.audit.inputs.targets import parse_targets
from lira_jax.audit.registry import ATTACKS, check_inputs, choose_attacks
from lira_jax.audit.report.result import Audit
from lira_jax.errors import UserError


def audit_logits(
    logits: npt.ArrayLike,
    keep: npt.ArrayLike,
    labels: npt.ArrayLike,
    *,
    attacks: str | Sequence[str] | None = None,
    targets: str | int | Sequence[int] = "all",
    views: Sequence[int] | None = None,
    lira_centre: str = "median",
    lira_counts: str = EQUALISED,
    rmia_a: float = 0.3,
    delta: float = 1e-5,
    classifier_rows: int = MAX_ROWS,
    title: str = "audit",
    target_logits: npt.ArrayLike | None = None,
    target_keep: npt.ArrayLike | None = None,
) -> Audit:
    """Scores `attacks` (default: every attack that needs no second run) with each of `targets` as the
    target and all other models as its shadows, pooled into one ROC per attack.

    logits: float16|32|64 [M, N, C] or [M, N, V, C] (NumPy, a memmap, or a CPU PyTorch tensor; never copied
    whole: φ is computed chunk by chunk); keep: bool or 0/1 [M, N], keep[m, n] = model m trained on example n;
    labels: any integer dtype [N]; attacks: names as a list or the command line's comma-separated string;
    targets: "all", "last", "I,J,...", "A:B", one model index or a list of them; views: the query views to
    use (default all); lira_centre: "median" or "mean"; lira_counts: "equalised" IN and OUT shadow counts
    (default), "raw" or "reference" (the reference code's plot.py: sets truncated in model order, its fixed
    variance); rmia_a in [0, 1]; delta in (0, 1); classifier_rows >= 2.
    target_logits float16|32|64 [N, C] or [N, V, C] and target_keep bool or 0/1 [N]: a model trained
    elsewhere, appended as model M and the only target (targets must then be "all"), every model of
    `logits` its shadow: exactly the numbers it would get as their last model.
    Returns an `Audit` (.metrics, .examples, .table(), .plot_roc(path), .to_html(path)). Every argument is
    checked as the command line checks its options: bad input raises `lira_jax.errors.UserError` with one
    line naming the argument and the problem.
    """
    title = arguments.text(title, "title")
    attacks = arguments.names(attacks, "attacks", ATTACKS)
    if attacks is not None and "ml_leaks_adv2" in attacks:
        raise UserError(
            "ml_leaks_adv2 (data transfer) needs a shadow model trained on another data set: from Python, "
            "classifier_scores(..., transfer=TransferShadow(...)); on the command line, --shadow-run OTHER"
        )
    lira_centre = arguments.choice(lira_centre, "lira_centre", ("median", "mean"))
    lira_counts = arguments.choice(lira_counts, "lira_counts", COUNTS)
    rmia_a = arguments.number(rmia_a, "rmia_a", 0.0, 1.0)
    delta = arguments.number(delta, "delta", 0.0, 1.0, open_low=True, open_high=True)
    classifier_rows = arguments.integer(classifier_rows, "classifier_rows", 2)
    files = [
        Path(array.filename)
        for array in (logits, keep, labels, target_logits, target_keep)
        if isinstance(getattr(array, "filename", None), str | PathLike)
    ]
    inputs = normalise(logits, keep, labels, views)
    has_target = target_logits is not None or target_keep is not None
    if has_target:
        if not (isinstance(targets, str) and targets.strip() == "all"):
            raise UserError(f"targets must be 'all' with target_logits (the target is that model), got {targets!r}")
        inputs = _with_target(inputs, logits, target_logits, target_keep, views)
        targets = "last"
    models = list(range(inputs.keep.shape[0]))
    if isinstance(targets, str):
        target_ids = parse_targets(targets, models, "targets")
    else:
        target_ids = arguments.indices(targets, "targets", len(models), "model indices")
    attacks = choose_attacks(attacks, Path("logits"), True, None, False)
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
    audit = evaluate_inputs(checked, attacks, target_ids, delta=delta, title=title)
    audit.metrics["inputs"] = {
        "summary": "arrays passed to lira_jax.audit_logits",
        "files": [str(file) for file in files],
        "phi": "computed from the logits passed",
        "notes": [],
    }
    return replace(audit, reads=tuple(files))


def _with_target(
    inputs: NormalisedInputs, logits: Any, target_logits: Any, target_keep: Any, views: Sequence[int] | None
) -> NormalisedInputs:
    """The inputs with the target appended as model M: logits [M + 1, N, V, C] (lazily), keep [M + 1, N]."""
    all_views = normalise_logits(logits).shape[2]  # the target has the caller's views, before `views` picks some
    target = check_target_model(
        as_numpy(target_logits, "target_logits"),
        as_numpy(target_keep, "target_keep"),
        inputs.labels,
        (all_views, inputs.logits.shape[3]),
    )
    chosen = list(range(all_views)) if views is None else arguments.indices(views, "views", all_views, "view indices")
    stacked = appended(inputs.logits, target.logits[:, chosen])
    return NormalisedInputs(stacked, np.concatenate([inputs.keep, target.keep[None]]), inputs.labels)
