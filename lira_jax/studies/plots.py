"""The PNGs of `lira_jax.study`: one figure per study, drawn from what the study returns for drawing.

Figures are small (dpi 100): they go into docs/ and version control.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lira_jax.audit.plots import _save, plt

DPI = 100
TPR_FLOOR = 1e-4  # zero TPRs are drawn here on log axes
MAIN_ATTACKS = ("lira_online", "lira_offline", "rmia_offline", "calibrated_loss", "global_threshold")
VIOLIN_POINTS = 20_000  # per group: the kernel density estimate needs no more


def plot_defences(drawing: dict[str, Any], path: Path) -> None:
    """TPR at 0.1% FPR (with its interval) and AUC of the main attacks, one x position per run."""
    rows, names = drawing["rows"], drawing["names"]
    attacks = [name for name in MAIN_ATTACKS if any(name in row["attacks"] for row in rows)]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    positions = np.arange(len(rows))
    for offset, name in enumerate(attacks):
        shift = (offset - (len(attacks) - 1) / 2) * 0.1
        present = [index for index, row in enumerate(rows) if name in row["attacks"]]
        points = [rows[index]["attacks"][name]["at_fpr"]["0.001"] for index in present]
        kept = [(index, point) for index, point in zip(present, points, strict=True) if point is not None]
        if kept:
            tpr = np.array([max(point["tpr"], TPR_FLOOR) for _, point in kept])
            low = np.array([max(point["tpr_interval"][0], TPR_FLOOR) for _, point in kept])
            high = np.array([max(point["tpr_interval"][1], TPR_FLOOR) for _, point in kept])
            x = np.array([index for index, _ in kept]) + shift
            left.errorbar(x, tpr, yerr=[tpr - low, high - tpr], fmt="o", ms=4, capsize=2, label=name)
        right.plot(
            np.array(present) + shift, [rows[index]["attacks"][name]["auc"] for index in present], "o", ms=4, label=name
        )
    left.axhline(1e-3, color="k", ls="--", lw=0.8, label="chance (TPR = FPR)")
    right.axhline(0.5, color="k", ls="--", lw=0.8)
    left.set(yscale="log", ylabel="TPR at 0.1% FPR (95% interval; 0 at 1e-4)", title="leakage at low FPR")
    right.set(ylabel="AUC", title="AUC")
    labels = [f"{name} {row['label'][:28]}" for name, row in zip(names, rows, strict=True)]
    for axes in (left, right):
        axes.set_xticks(positions, labels, rotation=35, ha="right", fontsize=7)
        axes.grid(True, axis="y", alpha=0.3)
    left.legend(fontsize=7)
    figure.tight_layout()
    _save(figure, path, dpi=DPI)


def plot_gap(drawing: dict[str, Any], path: Path) -> None:
    """Two panels: each target's TPR at 0.1% FPR against its accuracy gap and its loss gap, coloured by
    test accuracy, with the correlations in the titles."""
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
    _save(figure, path, dpi=DPI)


def plot_shadows(drawing: dict[str, Any], path: Path) -> None:
    """AUC and TPR at 0.1% and 0.001% FPR against the number of shadow models (log axis), one line per variant."""
    results, variants = drawing["results"], drawing["variants"]
    counts = [row["count"] for row in results]
    figure, panels = plt.subplots(1, 3, figsize=(13, 3.8))
    measures = (("AUC", None), ("TPR at 0.1% FPR (0 at 1e-4)", "0.001"), ("TPR at 0.001% FPR (0 at 1e-4)", "1e-05"))
    for axes, (label, level) in zip(panels, measures, strict=True):
        measured = False
        for name in variants:
            values = []
            for row in results:
                metrics = row["attacks"][name]["metrics"]
                value = None if metrics is None else metrics["auc"] if level is None else metrics["tpr_at_fpr"][level]
                values.append(np.nan if value is None else value if level is None else max(value, TPR_FLOOR))
            measured |= bool(np.isfinite(values).any())
            axes.plot(counts, values, "o-", ms=4, label=name)
        if not measured:
            axes.text(0.5, 0.5, "not measurable:\ntoo few non-members", ha="center", transform=axes.transAxes)
        elif level is not None:
            axes.axhline(float(level), color="k", ls="--", lw=0.8, label="chance")
            axes.set_yscale("log")
        axes.set(xscale="log", xlabel="shadow models per target", ylabel=label)
        axes.set_xticks(counts, [str(count) for count in counts])
        axes.tick_params(axis="x", which="minor", labelbottom=False)
        axes.grid(True, alpha=0.3)
    panels[0].legend(fontsize=7)
    figure.tight_layout()
    _save(figure, path, dpi=DPI)


def plot_violins(drawing: dict[str, Any], path: Path) -> None:
    """φ of members (red) and non-members (blue), correctly and wrongly classified (a random sample per group)."""
    phi, correct, membership = drawing["phi"], drawing["correct"], drawing["membership"]
    rng = np.random.default_rng(0)
    figure, axes = plt.subplots(figsize=(6.5, 4))
    ticks = []
    for block, (right, right_name) in enumerate(((True, "correct"), (False, "wrong"))):
        for offset, (member, colour, name) in enumerate(
            ((True, "tab:red", "member"), (False, "tab:blue", "non-member"))
        ):
            values = phi[(correct == right) & (membership == member)]
            position = 3 * block + offset + 1
            ticks.append((position, f"{name}\n{right_name}\n({len(values):,})"))
            if len(values) < 2:
                continue
            if len(values) > VIOLIN_POINTS:
                values = rng.choice(values, VIOLIN_POINTS, replace=False)
            parts = axes.violinplot([values], [position], showmedians=True, widths=0.9)
            for body in parts["bodies"]:
                body.set(facecolor=colour, alpha=0.5)
            for lines in ("cbars", "cmins", "cmaxes", "cmedians"):
                parts[lines].set(color=colour, lw=1)
    axes.set_xticks([tick for tick, _ in ticks], [label for _, label in ticks], fontsize=8)
    axes.set(ylabel="φ (logit-scaled confidence, identity view)", title="confidence by membership and correctness")
    axes.grid(True, axis="y", alpha=0.3)
    _save(figure, path, dpi=DPI)
