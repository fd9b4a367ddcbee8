"""`defences RUN1 RUN2 ...`: one row per run (one defence each) on the same data set: train and test accuracy,
their gap, ε if the run records one, and the AUC and TPR at 0.1% FPR (with its interval) of every attack."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lira_jax import config as config_lib
from lira_jax.audit.inputs.checked import applicable
from lira_jax.audit.metrics import attack_metrics
from lira_jax.audit.registry import score_attacks
from lira_jax.config import Config
from lira_jax.errors import UserError
from lira_jax.studies.common import Run, StudyResult, markdown_table, number, tpr_cell
from lira_jax.studies.plots import draw_zeros, mark_floor, pyplot, save, zero_floor

MAIN_ATTACKS = ("lira_online", "lira_offline", "rmia_offline", "calibrated_loss", "global_threshold")  # drawn


def _flat_config(config: Config) -> dict[str, Any]:
    identity = config_lib.identity(config)
    return {f"{section}.{key}": value for section, values in identity.items() for key, value in values.items()}


def _check_same_data(runs: Sequence[Run]) -> None:
    first = runs[0]
    for run in runs[1:]:
        data = [r.config.data for r in (first, run) if r.config is not None]
        if (len(data) == 2 and data[0] != data[1]) or not np.array_equal(run.labels, first.labels):
            raise UserError(
                f"{run.path} holds a different data set than {first.path} (data config or labels.npy differ): "
                "a defence table compares runs on the same examples"
            )


def defence_label(run: Run, first: Run) -> str:
    """The config keys in which `run` differs from the first run, else the folder's name."""
    if run is first or run.config is None or first.config is None:
        return run.path.name
    ours, theirs = _flat_config(run.config), _flat_config(first.config)
    differ = [f"{key}={json.dumps(value)}" for key, value in ours.items() if theirs.get(key) != value]
    return ", ".join(differ) or run.path.name


def _epsilon(run: Run) -> str | None:
    values = sorted({record["dp_epsilon"] for record in run.records or [] if record.get("dp_epsilon") is not None})
    if not values:
        return None
    return f"{values[0]:.3g}" if len(values) == 1 else f"{values[0]:.3g}–{values[-1]:.3g}"


def study_defences(runs: Sequence[Run], options: dict[str, Any]) -> StudyResult:
    """One row per run; every attack pooled over all targets, as `python -m lira_jax.attack RUN` scores it.

    The figure is drawn from {rows: the JSON rows, names: "(1)", "(2)", ... one per run}.
    """
    _check_same_data(runs)
    accuracies = [run.accuracies() for run in runs]
    rows = []
    for run, (train, test) in zip(runs, accuracies, strict=True):
        attack_scores = applicable(
            score_attacks(run.scores, run.keep, None, run.default_attacks(), logits=run.logits, labels=run.labels)
        )
        rows.append(
            {
                "run": str(run.path),
                "label": defence_label(run, runs[0]),
                "epsilon": _epsilon(run),
                "num_models": len(run.models),
                "train_accuracy": float(train.mean()),
                "test_accuracy": float(test.mean()),
                "gap": float((train - test).mean()),
                "attacks": {name: attack_metrics(run.keep, values) for name, values in attack_scores.items()},
            }
        )
    names = [f"({index + 1})" for index in range(len(rows))]
    return _defence_text(rows, names), {"runs": rows}, {"rows": rows, "names": names}


def _defence_text(rows: Sequence[dict[str, Any]], names: Sequence[str]) -> str:
    """The summary table (one line per run), then TPR at 0.1% FPR and AUC (one line per attack, one column per run)."""
    attacks = list(dict.fromkeys(name for row in rows for name in row["attacks"]))
    show_epsilon = any(row["epsilon"] for row in rows)
    header = ["run", *(["ε"] if show_epsilon else []), "models", "train acc", "test acc", "gap"]
    summary = [
        [
            row["label"],
            *([row["epsilon"] or "∞ (no DP)"] if show_epsilon else []),
            row["num_models"],
            number(row["train_accuracy"]),
            number(row["test_accuracy"]),
            number(row["gap"]),
        ]
        for row in rows
    ]
    legend = ", ".join(f"{name} {row['label']}" for name, row in zip(names, rows, strict=True))
    tprs = [[name, *(tpr_cell(row["attacks"].get(name)) for row in rows)] for name in attacks]
    aucs = [
        [name, *(number(row["attacks"][name]["auc"]) if name in row["attacks"] else "–" for row in rows)]
        for name in attacks
    ]
    nonmembers = rows[0]["attacks"][attacks[0]]["num_nonmembers"]
    return "\n\n".join(
        [
            markdown_table(["", *header], [[name, *row] for name, row in zip(names, summary, strict=True)]),
            f"TPR at 0.1% FPR [95% Clopper-Pearson interval], ROC pooled over every target "
            f"({nonmembers:,} non-members in {names[0]}): {legend}",
            markdown_table(["attack", *names], tprs),
            "AUC",
            markdown_table(["attack", *names], aucs),
        ]
    )


def plot_defences(drawing: dict[str, Any], path: Path) -> None:
    """TPR at 0.1% FPR (with its interval) and AUC of the main attacks, one x position per run."""
    plt = pyplot()
    rows, names = drawing["rows"], drawing["names"]
    attacks = [name for name in MAIN_ATTACKS if any(name in row["attacks"] for row in rows)]
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    positions = np.arange(len(rows))
    points = [row["attacks"][name]["at_fpr"]["0.001"] for row in rows for name in attacks if name in row["attacks"]]
    lows = [point["tpr_interval"][0] for point in points if point is not None]
    floor = zero_floor(1e-3, lows)
    if 0 in lows:
        mark_floor(left, floor)
    for offset, name in enumerate(attacks):
        shift = (offset - (len(attacks) - 1) / 2) * 0.1
        present = [index for index, row in enumerate(rows) if name in row["attacks"]]
        points = [rows[index]["attacks"][name]["at_fpr"]["0.001"] for index in present]
        kept = [(index, point) for index, point in zip(present, points, strict=True) if point is not None]
        if kept:  # a TPR (or interval end) of 0 is drawn at the floor, the TPR itself as a hollow marker
            measured = np.array([point["tpr"] for _, point in kept])
            tpr = np.maximum(measured, floor)
            low = np.array([max(point["tpr_interval"][0], floor) for _, point in kept])
            high = np.array([max(point["tpr_interval"][1], floor) for _, point in kept])
            x = np.array([index for index, _ in kept]) + shift
            bars = left.errorbar(x, tpr, yerr=[tpr - low, high - tpr], fmt="o", ms=4, capsize=2, label=name)
            draw_zeros(left, x, measured, floor, bars[0].get_color())
        right.plot(
            np.array(present) + shift, [rows[index]["attacks"][name]["auc"] for index in present], "o", ms=4, label=name
        )
    left.axhline(1e-3, color="k", ls="--", lw=0.8, label="chance (TPR = FPR)")
    right.axhline(0.5, color="k", ls="--", lw=0.8)
    left.set(yscale="log", ylabel="TPR at 0.1% FPR (95% interval)", title="leakage at low FPR")
    right.set(ylabel="AUC", title="AUC")
    labels = [  # wrapped between config keys only; the no-break space keeps "(i)" with its first key
        textwrap.fill(f"{name}\u00a0{row['label']}", 30, break_long_words=False)
        for name, row in zip(names, rows, strict=True)
    ]
    for axes in (left, right):
        axes.set_xticks(positions, labels, rotation=35, ha="right", rotation_mode="anchor", fontsize=7)
        axes.grid(True, axis="y", alpha=0.3)
    right.legend(*left.get_legend_handles_labels(), loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=8)
    figure.tight_layout()
    save(figure, path)
