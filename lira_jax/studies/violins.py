"""`violins RUN`: φ of members and non-members, split by correct and wrong predictions, and every attack on all
examples against on correctly classified examples only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lira_jax.audit.inputs.checked import applicable
from lira_jax.audit.metrics import attack_metrics
from lira_jax.audit.registry import score_attacks
from lira_jax.studies.common import (
    Run,
    StudyResult,
    identity_view_arrays,
    markdown_table,
    number,
    tpr_cell,
)
from lira_jax.studies.plots import pyplot, save

VIOLIN_POINTS = 20_000  # drawn per group: the kernel density estimate needs no more


def study_violins(run: Run, options: dict[str, Any]) -> StudyResult:
    """φ (identity view) of every (target, example) pair in four groups, and every attack on all pairs
    against on the pairs the target classifies correctly.

    The figure is drawn from {phi: float32[T, N], correct: bool[T, N], membership: bool[T, N]} for T targets.
    """
    phi, correct = identity_view_arrays(run, correctness=True)
    positions = run.targets(options["targets"])
    phi, correct, membership = phi[positions], correct[positions], run.keep[positions]
    groups = {}
    for right, right_name in ((True, "correct"), (False, "wrong")):
        for member, member_name in ((True, "member"), (False, "non-member")):
            values = phi[(correct == right) & (membership == member)]
            quartiles = np.percentile(values, [25, 50, 75]).tolist() if len(values) else [None] * 3
            groups[f"{member_name}, {right_name}"] = {"count": int(len(values)), "quartiles": quartiles}
    attack_scores = score_attacks(
        run.scores, run.keep, positions, run.default_attacks(), logits=run.logits, labels=run.labels
    )
    attacks = {}
    for name, values in applicable(attack_scores).items():
        everything = attack_metrics(membership, values)
        only_correct = (
            attack_metrics(membership[correct], values[correct])
            if membership[correct].any() and not membership[correct].all()
            else None
        )
        attacks[name] = {"all": everything, "correct_only": only_correct}
    group_rows = [
        [name, f"{group['count']:,}", *(number(q, 2) for q in group["quartiles"])] for name, group in groups.items()
    ]
    attack_rows = [
        [
            name,
            number(entry["all"]["auc"]),
            tpr_cell(entry["all"]),
            number(entry["correct_only"] and entry["correct_only"]["auc"]),
            tpr_cell(entry["correct_only"]),
        ]
        for name, entry in attacks.items()
    ]
    counts = {
        kind: (int(mask.sum()), int((mask & ~membership).sum()))
        for kind, mask in (("all", np.ones_like(correct)), ("correct", correct))
    }
    text = "\n\n".join(
        [
            f"{len(positions)} target(s); φ on the identity view; pairs (target, example) pooled",
            markdown_table(["group", "pairs", "φ 25%", "median", "75%"], group_rows),
            f"attacks on all {counts['all'][0]:,} pairs ({counts['all'][1]:,} non-members) and on the "
            f"{counts['correct'][0]:,} the target classifies correctly ({counts['correct'][1]:,} non-members)",
            markdown_table(["attack", "AUC all", "TPR@0.1% all", "AUC correct", "TPR@0.1% correct"], attack_rows),
        ]
    )
    data = {"targets": [run.models[p] for p in positions], "groups": groups, "attacks": attacks, "pairs": counts}
    return text, data, {"phi": phi, "correct": correct, "membership": membership}


def plot_violins(drawing: dict[str, Any], path: Path) -> None:
    """φ of members (red) and non-members (blue), correctly and wrongly classified (a random sample per group)."""
    plt = pyplot()
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
                axes.text(
                    position,
                    0.5,
                    "none" if len(values) == 0 else "one",
                    ha="center",
                    color=colour,
                    transform=axes.get_xaxis_transform(),
                    fontsize=8,
                )
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
    save(figure, path)
