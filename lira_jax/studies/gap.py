"""`gap RUN [RUN ...]`: per target model, LiRA online's TPR at 0.1% FPR against its accuracy and loss gaps
(several runs: their targets pooled, each scored against its own run's models)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from lira_jax.audit.attacks.lira.lira import lira_scores
from lira_jax.audit.metrics import attack_metrics, points_at_fpr, roc_curve
from lira_jax.studies.common import LOW_FPR, Run, StudyResult, identity_view_arrays, markdown_table, number
from lira_jax.studies.plots import pyplot, save

HYPERPARAMETERS = ("learning_rate", "weight_decay", "label_smoothing", "epochs", "augment_strength")


def per_target_tpr(membership: np.ndarray, values: np.ndarray, alpha: float) -> tuple[float, float]:
    """(TPR at FPR <= alpha, AUC) of one target's own ROC over its examples (bool[N], float[N]).

    Unlike `metrics.tpr_at_fpr` this is given even where alpha < 1 / non-members: it is then the TPR at
    zero false positives, which the table says next to the number of non-members.
    """
    roc = roc_curve(membership, values)
    return float(roc.tpr[points_at_fpr(roc, alpha)]), float(attack_metrics(None, None, roc=roc)["auc"])


def _finite_or_none(value: float) -> float | None:
    return None if not math.isfinite(value) else float(value)


def _correlation(x: np.ndarray, y: np.ndarray) -> dict[str, float | None]:
    """Pearson's r and Spearman's ρ of float[P] x and y with their p-values; all None if either is constant."""
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return {"pearson": None, "pearson_p": None, "spearman": None, "spearman_p": None}
    pearson, spearman = stats.pearsonr(x, y), stats.spearmanr(x, y)
    return {
        "pearson": _finite_or_none(pearson.statistic),
        "pearson_p": _finite_or_none(pearson.pvalue),
        "spearman": _finite_or_none(spearman.statistic),
        "spearman_p": _finite_or_none(spearman.pvalue),
    }


def _gap_points(run: Run, options: dict[str, Any]) -> list[dict[str, Any]]:
    """One point per target model of `run`, scored against the run's other models."""
    train, test = run.accuracies()
    positions = run.targets(options["targets"])
    phi, _ = identity_view_arrays(run, correctness=False)
    loss = np.logaddexp(0.0, -phi.astype(np.float64))  # cross-entropy −log σ(φ) = −log p_y
    online = lira_scores(run.scores, run.keep, positions, ["lira_online"])["lira_online"]
    points = []
    for row, position in enumerate(positions):
        members = run.keep[position]
        tpr, auc = per_target_tpr(members, online[row], float(LOW_FPR))
        record = run.records[position] if run.records else {}
        points.append(
            {
                "run": str(run.path),
                "model": run.models[position],
                "tpr_at_0.1%_fpr": tpr,
                "auc": auc,
                "train_accuracy": float(train[position]),
                "test_accuracy": float(test[position]),
                "accuracy_gap": float(train[position] - test[position]),
                "loss_gap": float(loss[position][~members].mean() - loss[position][members].mean()),
                "members": int(members.sum()),
                "nonmembers": int((~members).sum()),
                **{
                    name: record["hyperparameters"][name]
                    for name in HYPERPARAMETERS
                    if name in record.get("hyperparameters", {})
                },
            }
        )
    return points


def study_gap(runs: Sequence[Run], options: dict[str, Any]) -> StudyResult:
    """Per target: LiRA online's TPR at 0.1% FPR (and AUC) on its own examples against its accuracy and loss gaps.

    Several runs (say, one per defence) pool their targets; each is scored within its own run. The figure is
    drawn from {points: the JSON targets, correlations: the JSON correlations}.
    """
    alpha = float(LOW_FPR)
    points = [point for run in runs for point in _gap_points(run, options)]
    column = {
        key: np.array([point[key] for point in points])
        for key in ("tpr_at_0.1%_fpr", "auc", "accuracy_gap", "loss_gap")
    }
    correlations = {
        f"{y} vs {x}": _correlation(column[x], column[y])
        for y in ("tpr_at_0.1%_fpr", "auc")
        for x in ("accuracy_gap", "loss_gap")
    }
    nonmembers = [point["nonmembers"] for point in points]
    false_positives = math.floor(alpha * min(nonmembers))
    resolution = (
        f"{len(points)} targets, {min(nonmembers):,}–{max(nonmembers):,} non-members each: TPR at 0.1% FPR "
        f"per target allows {false_positives} false positive(s)"
        + (" (it is the TPR at zero false positives, a coarse measure)" if false_positives == 0 else "")
    )
    spread = [
        [
            name,
            number(float(column[key].min()), 4),
            number(float(np.median(column[key])), 4),
            number(float(column[key].max()), 4),
        ]
        for name, key in (
            ("LiRA online TPR at 0.1% FPR", "tpr_at_0.1%_fpr"),
            ("LiRA online AUC", "auc"),
            ("train − test accuracy", "accuracy_gap"),
            ("test − train loss", "loss_gap"),
        )
    ]
    table = [
        [
            name,
            number(value["pearson"]),
            number(value["pearson_p"], 4),
            number(value["spearman"]),
            number(value["spearman_p"], 4),
        ]
        for name, value in correlations.items()
    ]
    text = "\n\n".join(
        [
            resolution,
            markdown_table(["per target", "min", "median", "max"], spread),
            markdown_table(["correlation", "Pearson r", "p", "Spearman ρ", "p"], table),
        ]
    )
    data = {"fpr": alpha, "targets": points, "correlations": correlations, "resolution": resolution}
    return text, data, {"points": points, "correlations": correlations}


def plot_gap(drawing: dict[str, Any], path: Path) -> None:
    """Two panels: each target's TPR at 0.1% FPR against its accuracy gap and its loss gap, coloured by
    test accuracy, with the correlations in the titles."""
    plt = pyplot()
    points, correlations = drawing["points"], drawing["correlations"]
    tpr = np.array([point["tpr_at_0.1%_fpr"] for point in points])
    test = np.array([point["test_accuracy"] for point in points])
    figure, panels = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for axes, key, label in zip(
        panels,
        ("accuracy_gap", "loss_gap"),
        ("train − test accuracy", "test − train loss (cross-entropy)"),
        strict=True,
    ):
        drawn = axes.scatter([point[key] for point in points], tpr, c=test, cmap="viridis", s=18)
        found = correlations[f"tpr_at_0.1%_fpr vs {key}"]
        stated = "undefined" if found["pearson"] is None else f"r = {found['pearson']:.2f}, ρ = {found['spearman']:.2f}"
        axes.set(xlabel=label, title=stated)
        axes.grid(True, alpha=0.3)
    panels[0].set_ylabel("LiRA online TPR at 0.1% FPR (per target)")
    figure.colorbar(drawn, ax=panels, label="test accuracy")
    save(figure, path)
