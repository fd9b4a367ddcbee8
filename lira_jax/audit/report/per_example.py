"""Per-example results: how exposed each example is, for examples.csv and `attack --top K`.

For attack a and example n over the T targets: the mean score over the targets that trained on n (in)
and over those that did not (out), and the fraction of its member-targets in which a flags n at the
threshold that gives FLAG_FPR on the pooled ROC (the largest set of (target, example) pairs whose
non-member fraction is at most FLAG_FPR, as `tpr_at_fpr` counts it; empty where FLAG_FPR is below one
non-member, as there the rate cannot be measured).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from lira_jax.audit.metrics import Roc, roc_curve

FLAG_FPR = 1e-3
# the attacks a report leads with (its legible ROC), and the first of them that ran ranks the examples
HEADLINE_ATTACKS = ("lira_online", "lira_online_fixed_var", "lira_offline", "rmia_online", "global_threshold")
BAND_CURVES = 6  # a ROC of at most this many curves shades their intervals, and is legible without a headline one
COLUMNS = ("example", "label", "members")
PER_ATTACK = ("in", "out", "flagged")  # column suffixes: <attack>_in, <attack>_out, <attack>_flagged
CSV_ROWS = 4096  # rows of examples.csv formatted at a time


def flag_threshold(roc: Roc, fpr: float = FLAG_FPR) -> float | None:
    """τ such that `scores > τ` flags at most fpr of the non-member pairs and as many pairs as that allows;
    None where fpr is below one non-member. roc: the exact ROC of those scores (`metrics.roc_curve`).

    With k = floor(fpr · non-members) pairs allowed, τ is the (k + 1)-th largest non-member score: the
    threshold of the first ROC point that counts k + 1 false positives (−inf if none does)."""
    allowed = math.floor(fpr * roc.num_nonmembers + 1e-9)
    if allowed < 1:
        return None
    point = int(np.searchsorted(roc.false_positives, allowed + 1, side="left"))
    return float(roc.thresholds[point]) if point < len(roc.thresholds) else -math.inf


def example_table(
    attack_scores: Mapping[str, np.ndarray],
    membership: np.ndarray,
    labels: np.ndarray,
    fpr: float = FLAG_FPR,
    thresholds: Mapping[str, float | None] | None = None,
) -> dict[str, np.ndarray]:
    """Columns of the per-example table, each [N]: example, label, members (targets that trained on it),
    then <attack>_in, <attack>_out (float64, NaN where no target is on that side) and <attack>_flagged
    (float64, NaN where it has no member-target or fpr cannot be measured); an attack that was not applicable
    gets no columns. attack_scores: {attack: float32[T, N] or NotApplicable}; membership: bool[T, N];
    labels: int[N]; thresholds: each attack's `flag_threshold` at fpr where already known (else its ROC is
    computed here)."""
    members = membership.sum(axis=0)
    nonmembers = (~membership).sum(axis=0)
    table: dict[str, np.ndarray] = {
        "example": np.arange(membership.shape[1]),
        "label": np.asarray(labels),
        "members": members,
    }
    with np.errstate(invalid="ignore", divide="ignore"):
        for name, scores in attack_scores.items():
            if not isinstance(scores, np.ndarray):  # not applicable (`inputs.NotApplicable`): no columns
                continue
            zero = np.zeros((), scores.dtype)  # sums in float64 without a float64 copy of the scores
            table[f"{name}_in"] = np.where(membership, scores, zero).sum(axis=0, dtype=np.float64) / members
            table[f"{name}_out"] = np.where(~membership, scores, zero).sum(axis=0, dtype=np.float64) / nonmembers
            if thresholds is not None and name in thresholds:
                threshold = thresholds[name]
            elif membership.any() and not membership.all():
                threshold = flag_threshold(roc_curve(membership, scores), fpr)
            else:
                threshold = None
            flagged = np.full(scores.shape[1], np.nan)
            if threshold is not None:  # τ is one of the scores, so comparing in their dtype is exact
                flagged = ((scores > scores.dtype.type(threshold)) & membership).sum(axis=0) / members
            table[f"{name}_flagged"] = flagged
    return table


def ranking_attack(table: Mapping[str, np.ndarray]) -> str | None:
    """The attack examples are ranked by: the first of HEADLINE_ATTACKS in the table, else its first attack
    (None if it has none)."""
    attacks = [column[: -len("_flagged")] for column in table if column.endswith("_flagged")]
    return next((name for name in HEADLINE_ATTACKS if name in attacks), attacks[0] if attacks else None)


def most_exposed(table: Mapping[str, np.ndarray], attack: str, count: int) -> np.ndarray:
    """The `count` examples that `attack` exposes most: flagged fraction first, then in minus out mean score."""
    flagged = np.nan_to_num(table[f"{attack}_flagged"], nan=-1.0)
    margin = np.nan_to_num(table[f"{attack}_in"] - table[f"{attack}_out"], nan=-np.inf)
    order = np.lexsort((table["example"], -margin, -flagged))
    return order[:count]


def table_csv(table: Mapping[str, np.ndarray]) -> str:
    """The table as CSV text, one row per example (NaN as an empty cell, scores to 6 significant digits).

    Written in blocks of CSV_ROWS rows, each row one `%` of a row format over Python scalars (integer
    columns %d, float columns %.6g), NaN cells emptied by string replacement over the text: no Python call
    per cell (50,000 rows of 18 columns in about 0.2 s), and no more than a block's scalars held at once."""
    header = io.StringIO()
    csv.writer(header, lineterminator="\n").writerow(table)
    columns = [np.asarray(column) for column in table.values()]
    row_format = ",".join("%.6g" if column.dtype.kind == "f" else "%d" for column in columns)
    blocks = []
    for start in range(0, len(columns[0]), CSV_ROWS):
        scalars = [column[start : start + CSV_ROWS].tolist() for column in columns]
        blocks.append("".join("\n" + row_format % row for row in zip(*scalars, strict=True)))
    body = "".join(blocks)  # each row after a newline, so every NaN cell follows "," or "\n"
    return header.getvalue() + body.replace(",nan", ",").replace("\nnan", "\n")[1:] + ("\n" if body else "")


def top_lines(table: Mapping[str, np.ndarray], attack: str, count: int) -> list[str]:
    """`attack --top K`: the most exposed examples as printed lines."""
    lines = [
        f"most exposed examples by {attack} (flagged: share of its member-targets flagged at {FLAG_FPR:.1%} FPR)",
        f"{'example':>8}{'label':>7}{'members':>9}{'flagged':>9}{'mean in':>11}{'mean out':>11}",
    ]
    for example in most_exposed(table, attack, count):
        flagged = table[f"{attack}_flagged"][example]
        lines.append(
            f"{example:>8}{table['label'][example]:>7}{table['members'][example]:>9}"
            f"{'n/m' if np.isnan(flagged) else f'{flagged:.0%}':>9}"
            f"{_score_cell(table[f'{attack}_in'][example], 11)}{_score_cell(table[f'{attack}_out'][example], 11)}"
        )
    return lines


def _score_cell(value: float, width: int) -> str:
    """A mean score right-aligned in `width` columns with a space before it, however large: 3 decimals
    where they fit, else 3 significant digits (1.23e+20)."""
    text = f"{value:.3f}"
    return f"{text if len(text) < width else f'{value:.3g}':>{width}}"


def rows(table: Mapping[str, np.ndarray], examples: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """The table as a list of {column: value} (JSON-ready; NaN as None), all examples or the given ones."""
    chosen = range(len(next(iter(table.values())))) if examples is None else examples
    return [{name: _value(column[int(n)]) for name, column in table.items()} for n in chosen]


def _value(value: Any) -> Any:
    if isinstance(value, np.floating | float):
        return None if np.isnan(value) else float(value)
    return int(value)
