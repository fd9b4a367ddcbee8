"""metrics.json's per-attack records: each attack's metrics from one exact ROC (with its plotted curve and
the threshold that flags examples), and how the attack classifiers were cross-fitted and sized."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lira_jax.audit.attacks.classifiers import CLASSIFIERS, HIDDEN_UNITS, MODEL_FOLDS, TOP_PROBABILITIES
from lira_jax.audit.inputs.checked import NotApplicable
from lira_jax.audit.metrics import FPR_LEVELS, attack_metrics, decision_metrics, roc_curve, roc_plot_data
from lira_jax.audit.report.per_example import flag_threshold
from lira_jax.audit.report.shadow_thresholds import THRESHOLD_ATTACKS, shadow_threshold_decisions

ML_LEAKS_ADVERSARY_3 = ("confidence", "entropy")  # thresholds on the maximum probability and on the entropy


def attack_records(
    membership: np.ndarray, attack_scores: dict[str, np.ndarray], delta: float
) -> tuple[dict[str, Any], dict[str, Any], dict[str, float | None]]:
    """metrics.json's "attacks" for membership bool[T, N] and scores {name: float32[T, N]}, each attack's
    ROC sampled for the plot (`metrics.roc_plot_data`, with its metrics), and its threshold flagging
    examples (`per_example.flag_threshold`): all three from one exact ROC per attack. The classifiers'
    decisions at their own threshold, and the threshold attacks' at thresholds from the other targets
    (`shadow_thresholds`), go with their metrics."""
    per_attack, curves, thresholds = {}, {}, {}
    for name, values in attack_scores.items():
        if isinstance(values, NotApplicable):  # null metrics with the reason; not on the plot
            per_attack[name] = {
                "auc": None,
                "balanced_accuracy": None,
                "tpr_at_fpr": {str(alpha): None for alpha in FPR_LEVELS},
                "not_applicable": values.reason,
            }
            continue
        roc = roc_curve(membership, values)  # exact; [T·N] points at most, so kept one at a time
        per_attack[name] = attack_metrics(membership, None, roc=roc, delta=delta)
        if name in CLASSIFIERS:
            per_attack[name]["at_decision_threshold"] = {
                "member_probability_above": 0.5,
                **decision_metrics(membership, values > 0),
            }
        elif name in THRESHOLD_ATTACKS and (decisions := shadow_threshold_decisions(membership, values)):
            per_attack[name]["at_shadow_threshold"] = decisions
        curves[name] = {**roc_plot_data(roc), **per_attack[name]}
        thresholds[name] = flag_threshold(roc)
        del roc  # before the next attack's ROC is built: two of them at once would double the peak memory
    return per_attack, curves, thresholds


def classifiers_record(
    attacks: Sequence[str], num_targets: int, classifier_rows: int, shadow_run: str | Path | None
) -> dict[str, Any]:
    """metrics.json's "classifiers": how the attack classifiers were cross-fitted and sized."""
    return {
        "cross_fitting": "targets in model folds x examples in 2 halves; each attack model is trained on "
        "models outside its targets' fold and examples in the other half",
        "model_folds": min(MODEL_FOLDS, num_targets),
        "example_halves": 2,
        "max_rows": classifier_rows,
        "hidden_units": HIDDEN_UNITS,
        "top_probabilities": TOP_PROBABILITIES,
        "view": 0,
        "shadow_run": None if shadow_run is None else str(shadow_run),
        "ml_leaks_adversary_3": [name for name in ML_LEAKS_ADVERSARY_3 if name in attacks],
    }
