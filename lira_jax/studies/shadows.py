"""`shadows RUN`: LiRA, BaVarIA, RMIA and BASE with 1, 2, 4, ..., M−1 shadow models per target (a seeded
random subset of the others)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lira_jax.audit.attacks.lira.lira import lira_scores
from lira_jax.audit.inputs.checked import NotApplicable
from lira_jax.audit.metrics import attack_metrics
from lira_jax.audit.registry import score_attacks
from lira_jax.audit.streaming import read_examples, subset_models
from lira_jax.errors import UserError
from lira_jax.studies.common import LOWEST_FPR, Run, StudyResult, markdown_table, number, tpr_cell
from lira_jax.studies.plots import draw_zeros, mark_floor, pyplot, save, zero_floor

ONLINE_VARIANTS = ("lira_online", "lira_online_fixed_var")
OFFLINE_VARIANTS = ("lira_offline", "lira_offline_fixed_var")
# The attacks since LiRA, through the registry: BaVarIA on LiRA's sets (covered as online / offline LiRA),
# RMIA and BASE on every example (their reference is the mean over all shadows).
ONLINE_OTHERS = ("bavaria_t",)
OFFLINE_OTHERS = ("bavaria_n",)
EVERY_EXAMPLE = ("rmia_online", "base")
VARIANTS = (*ONLINE_VARIANTS, *OFFLINE_VARIANTS, *ONLINE_OTHERS, *OFFLINE_OTHERS, *EVERY_EXAMPLE)


def shadow_counts(num_models: int, requested: Sequence[int] | None) -> list[int]:
    """1, 2, 4, ... below M − 1, then M − 1 (every other model); or the requested counts, checked."""
    if num_models < 3:
        raise UserError(f"the shadow-count study needs at least 3 finished models, got {num_models}")
    if requested is None:
        return sorted({*(2**power for power in range(int(math.log2(num_models - 1)) + 1)), num_models - 1})
    if any(not 1 <= count <= num_models - 1 for count in requested):
        raise UserError(
            f"--counts must lie in [1, {num_models - 1}] (a target has {num_models - 1} other models), "
            f"got {list(requested)}"
        )
    return sorted(set(requested))


def _shadow_subset(run: Run, position: int, count: int, seed: int) -> tuple[np.ndarray, int]:
    """Model positions of target `position` and `count` random others (sorted), and the target's place among them."""
    others = np.delete(np.arange(run.keep.shape[0]), position)
    chosen = np.random.default_rng([seed, count, position]).choice(others, count, replace=False)
    rows = np.sort(np.append(chosen, position))
    return rows, int(np.searchsorted(rows, position))


def _with_count(run: Run, positions: Sequence[int], count: int, seed: int) -> dict[str, Any]:
    """Every LiRA variant with `count` shadows per target, ROC pooled over the targets:
    {count, attacks: {variant: {coverage, metrics (or None where no example, or only one class, was scored)}}}."""
    pooled: dict[str, tuple[list, list]] = {name: ([], []) for name in VARIANTS}  # membership, scores per target
    for position in positions:
        rows, target = _shadow_subset(run, position, count, seed)
        keep = run.keep[rows]
        values = read_examples(subset_models(run.scores, rows), 0, run.num_examples)
        inside = keep.sum(axis=0) - keep[target]
        outside = count - inside
        online, offline = (inside > 0) & (outside > 0), outside > 0
        groups = (
            (ONLINE_VARIANTS, online, lira_scores),
            (OFFLINE_VARIANTS, offline, lira_scores),
            (ONLINE_OTHERS, online, score_attacks),
            (OFFLINE_OTHERS, offline, score_attacks),
            (EVERY_EXAMPLE, np.ones_like(online), score_attacks),
        )
        for group, covered, scoring in groups:
            if not covered.any() or keep[target, covered].all() or not keep[target, covered].any():
                continue
            group_scores = scoring(values[:, covered], keep[:, covered], [target], group)
            for name in group:
                if isinstance(group_scores[name], NotApplicable):  # too few shadows for it: not scored
                    continue
                pooled[name][0].append(keep[target, covered])
                pooled[name][1].append(group_scores[name][0])
    row = {"count": count, "attacks": {}}
    for name, (membership, scores) in pooled.items():
        scored = sum(len(part) for part in membership)
        coverage = scored / (len(positions) * run.num_examples)
        membership_all = np.concatenate(membership) if membership else np.zeros(0, bool)
        if not membership or membership_all.all() or not membership_all.any():
            row["attacks"][name] = {"coverage": coverage, "metrics": None}
            continue
        metrics = attack_metrics(membership_all, np.concatenate(scores))
        row["attacks"][name] = {"coverage": coverage, "metrics": metrics}
    return row


def study_shadows(run: Run, options: dict[str, Any]) -> StudyResult:
    """LiRA, BaVarIA, RMIA and BASE with `count` random shadow models per target, ROC pooled over targets.

    An example enters online LiRA's (and bavaria_t's) ROC only if the target's shadows hold it at least once
    IN and once OUT, offline LiRA's (bavaria_n's) only if at least once OUT, RMIA's and BASE's always; an
    attack not applicable to a target's shadows (BaVarIA's prior needs sets of 2) leaves its examples out;
    `coverage` is the fraction of (target, example) pairs scored.
    The figure is drawn from {results: the JSON counts, variants: the LiRA variants}.
    """
    counts = shadow_counts(run.keep.shape[0], options["counts"])
    positions = run.targets(options["targets"])
    results = [_with_count(run, positions, count, options["seed"]) for count in counts]

    def cells(entry: dict[str, Any]) -> list[str]:
        metrics = entry["metrics"]
        if metrics is None:
            return ["–", "–", "–", f"{entry['coverage']:.0%}"]
        return [number(metrics["auc"]), tpr_cell(metrics), tpr_cell(metrics, LOWEST_FPR), f"{entry['coverage']:.0%}"]

    tables = []
    for name in VARIANTS:
        rows = [[row["count"], *cells(row["attacks"][name])] for row in results]
        tables.append(f"{name}\n\n" + markdown_table(["shadows", "AUC", "TPR@0.1%", "TPR@0.001%", "coverage"], rows))
    note = (
        f"{len(positions)} target(s) of {run.keep.shape[0]} models; each target's shadows are a seeded random subset "
        f"(seed {options['seed']}) of the others. Online LiRA and bavaria_t score only the examples that the shadows "
        "hold at least once IN and once OUT, offline LiRA and bavaria_n those held at least once OUT, RMIA and BASE "
        "every example; an attack not applicable to a target's shadows (BaVarIA's prior needs sets of 2) scores none "
        "of its examples; coverage is the fraction of (target, example) pairs scored, and – means none (or only one "
        "class) was. A set of one model has zero spread (σ is floored at 1e-6), so the per-example-variance LiRA "
        "variants are unreliable at small counts: see the fixed-variance ones."
    )
    return (
        "\n\n".join([note, *tables]),
        {"targets": [run.models[p] for p in positions], "counts": results},
        {"results": results, "variants": VARIANTS},
    )


def plot_shadows(drawing: dict[str, Any], path: Path) -> None:
    """AUC and TPR at 0.1% and 0.001% FPR against the number of shadow models (log axis), one line per variant;
    a TPR of 0 is a hollow marker on the panel's "TPR 0" line, below chance (`plots.zero_floor`); a measure
    that no count could measure (too few non-members) gets no panel, only a note under the figure."""
    plt = pyplot()
    results, variants = drawing["results"], drawing["variants"]
    counts = np.array([row["count"] for row in results])
    measures = (("AUC", None), ("TPR at 0.1% FPR", "0.001"), ("TPR at 0.001% FPR", "1e-05"))
    lines = {measure: {name: _measure(results, name, measure[1]) for name in variants} for measure in measures}
    drawn = [measure for measure in measures if any(np.isfinite(v).any() for v in lines[measure].values())]
    figure, panels = plt.subplots(1, len(drawn), figsize=(4.3 * len(drawn) + 1.8, 3.8), squeeze=False)
    panels = panels[0]
    for axes, measure in zip(panels, drawn, strict=True):
        label, level = measure
        floor = None
        if level is not None:
            values = np.concatenate(list(lines[measure].values()))
            floor = zero_floor(float(level), values)
            if (values == 0).any():
                mark_floor(axes, floor)
        for name, values in lines[measure].items():
            shown = values if floor is None else np.where(values == 0, floor, values)
            (line,) = axes.plot(counts, shown, "-", label=name)
            measured = values != 0
            axes.plot(counts[measured], shown[measured], "o", ms=4, color=line.get_color())
            if floor is not None:
                draw_zeros(axes, counts, values, floor, line.get_color())
        if level is not None:
            axes.axhline(float(level), color="k", ls="--", lw=0.8, label="chance")
            axes.set_yscale("log")
        axes.set(xscale="log", xlabel="shadow models per target", ylabel=label)
        axes.set_xticks(counts, [str(count) for count in counts])
        axes.tick_params(axis="x", which="minor", labelbottom=False)
        axes.grid(True, alpha=0.3)
    panels[-1].legend(loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=8)
    missing = [measure[0] for measure in measures if measure not in drawn]
    figure.tight_layout()
    if missing:
        figure.text(0.01, -0.02, f"not measurable (too few non-members): {', '.join(missing)}", fontsize=8)
    save(figure, path)


def _measure(results: Sequence[dict[str, Any]], name: str, level: str | None) -> np.ndarray:
    """The variant's AUC (level None) or TPR at FPR `level` per count; NaN: not measured."""
    values = []
    for row in results:
        metrics = row["attacks"][name]["metrics"]
        value = None if metrics is None else metrics["auc"] if level is None else metrics["tpr_at_fpr"][level]
        values.append(np.nan if value is None else value)
    return np.array(values, dtype=np.float64)
