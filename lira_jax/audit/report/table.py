"""The attack table that `python -m lira_jax.attack` (and `train`) prints, and metrics.csv, from a metrics.json dict.

One row per attack (AUC, balanced accuracy, TPR at each FPR of metrics.FPR_LEVELS), then the attack
classifiers at their own decision threshold, the correctness rule next to (1 + train - test) / 2, and
what the run was attacked as (mask, epoch).
"""

import csv
import io
from typing import Any

from lira_jax.audit.metrics import FPR_LEVELS


def format_table(metrics: dict[str, Any]) -> str:
    """The metrics as a fixed-width table (TPR in percent; n/m: not measurable with this many non-members;
    n/a and the reason: the attack cannot be scored on this run)."""
    levels = [str(alpha) for alpha in FPR_LEVELS]
    header = f"{'attack':<24}{'AUC':>8}{'bal.acc':>9}" + "".join(f"{f'TPR@{float(a) * 100:g}%':>13}" for a in levels)
    lines = [
        f"{metrics['num_models']} models, {metrics['num_examples']} examples, {metrics['num_views']} views, "
        f"{len(metrics['targets'])} target(s)",
        header,
    ]
    for name, values in metrics["attacks"].items():
        if values.get("not_applicable"):
            lines.append(f"{name:<24}    n/a ({values['not_applicable']})")
            continue
        tprs = "".join(
            f"{'n/m' if values['tpr_at_fpr'][a] is None else format(values['tpr_at_fpr'][a], '.2%'):>13}"
            for a in levels
        )
        lines.append(f"{name:<24}{values['auc']:>8.4f}{values['balanced_accuracy']:>9.4f}{tprs}")
    return "\n".join(lines + decision_lines(metrics))


def decision_lines(metrics: dict[str, Any]) -> list[str]:
    """The attack classifiers at their own threshold, the threshold attacks at thresholds chosen on the other
    targets (shadows: never the target's own labels), the correctness rule next to (1 + gap) / 2, the mask."""
    rows = [
        (f"{name} (p > 0.5)", values["at_decision_threshold"])
        for name, values in metrics["attacks"].items()
        if "at_decision_threshold" in values
    ]
    rows += [
        (f"{name} (τ from shadows)", values["at_shadow_threshold"])
        for name, values in metrics["attacks"].items()
        if "at_shadow_threshold" in values
    ]
    rule = metrics.get("correctness_rule")
    if rule is not None:
        rows.append(("correctness rule", rule))
    lines = []
    if rows:
        width = max(32, max(len(name) for name, _ in rows) + 2)
        header = f"{'at the decision threshold':<{width}}{'precision':>10}{'recall':>9}{'accuracy':>10}{'bal.acc':>9}"
        lines += ["", header]
        for name, values in rows:
            precision = "n/a" if values["precision"] is None else f"{values['precision']:.4f}"
            lines.append(
                f"{name:<{width}}{precision:>10}{values['recall']:>9.4f}{values['accuracy']:>10.4f}"
                f"{values['balanced_accuracy']:>9.4f}"
            )
    if rule is not None:
        lines.append(
            f"correctness rule (labelled right => member): balanced accuracy {rule['balanced_accuracy']:.4f}; "
            f"(1 + train {rule['train_accuracy']:.4f} - test {rule['test_accuracy']:.4f}) / 2 = "
            f"{rule['gap_accuracy']:.4f}"
            + ("" if rule["balanced_counts"] else " (equal when every target has n members and n non-members)")
        )
    adversary_3 = metrics.get("classifiers", {}).get("ml_leaks_adversary_3")
    if adversary_3:
        lines.append(f"ML-Leaks adversary 3 (thresholds, no shadow model): {' and '.join(adversary_3)} above")
    if "mask" in metrics:
        lines.append(
            f"output mask {metrics['mask']['spec']}"
            + (f": {metrics['mask']['note']}" if "note" in metrics["mask"] else "")
        )
    if "epoch" in metrics:
        lines.append(f"models as of epoch {metrics['epoch']}")
    return lines


def metrics_csv(metrics: dict[str, Any]) -> str:
    """metrics.csv: one row per attack (AUC, balanced accuracy, then per FPR level the TPR and its interval;
    empty cells where not measurable or not applicable) for spreadsheets."""
    levels = [str(alpha) for alpha in FPR_LEVELS]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    header = ["attack", "auc", "balanced_accuracy"]
    for level in levels:
        header += [f"tpr_at_fpr_{level}", f"tpr_low_{level}", f"tpr_high_{level}"]
    writer.writerow([*header, "epsilon_lower_bound", "num_members", "num_nonmembers"])
    for name, values in metrics["attacks"].items():
        row = [name, values.get("auc"), values.get("balanced_accuracy")]
        for level in levels:
            point = (values.get("at_fpr") or {}).get(level)
            interval = [None, None] if point is None else point["tpr_interval"]
            row += [(values.get("tpr_at_fpr") or {}).get(level), *interval]
        bound = (values.get("epsilon_lower_bound") or {}).get("epsilon")
        writer.writerow(
            [
                "" if cell is None else cell
                for cell in [*row, bound, values.get("num_members"), values.get("num_nonmembers")]
            ]
        )
    return out.getvalue()
