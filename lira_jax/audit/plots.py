"""Log-scale ROC curves with Clopper-Pearson bands, and the IN/OUT score distributions LiRA fits.

Matplotlib runs on the Agg backend (files only, no display needed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

from lira_jax.audit.metrics import Roc, clopper_pearson, points_at_fpr
from lira_jax.audit.per_example import HEADLINE_ATTACKS
from lira_jax.audit.streaming import ExampleArray, read_examples
from lira_jax.errors import UserError
from lira_jax.writing import atomic_path, disk_errors

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)

FPR_RANGE = (1e-5, 1.0)
BAND_CURVES = 6
LINE_STYLES = ("-", "--", ":", "-.")


def roc_plot_data(roc: Roc, confidence: float = 0.95, num_points: int = 400) -> dict[str, np.ndarray]:
    """The ROC sampled on a log grid of FPR: {fpr, tpr, tpr_low, tpr_high}, each float64[num_points].

    tpr is the largest TPR with FPR <= the grid value (the curve behind `tpr_at_fpr`); the band is
    the Clopper-Pearson interval of that point's TPR. The grid starts at 1 / non-members (or 1e-5),
    below which no FPR is measurable. Small enough to keep for many attacks.
    """
    lowest = max(FPR_RANGE[0], 1.0 / roc.num_nonmembers)
    grid = np.logspace(np.log10(lowest), np.log10(FPR_RANGE[1]), num_points)
    points = points_at_fpr(roc, grid)
    low, high = clopper_pearson(roc.true_positives[points], roc.num_members, confidence)
    return {"fpr": grid, "tpr": roc.tpr[points], "tpr_low": low, "tpr_high": high}


def save_figure(figure: Any, path: str | Path, dpi: int = 150, note: str | None = None) -> None:
    """Writes the figure whole or not at all (temporary file, then rename); an OSError is one line. note: a
    line stored in the file's metadata (PNG and SVG "Description", PDF "Subject"), e.g. the invocation id."""
    path = Path(path)
    key = "Subject" if path.suffix.lower() == ".pdf" else "Description"
    try:
        with disk_errors(path), atomic_path(path) as temporary:
            figure.savefig(temporary, dpi=dpi, bbox_inches="tight", metadata=None if note is None else {key: note})
    finally:
        plt.close(figure)


def headline_curves(curves: Mapping[str, Any]) -> dict[str, Any]:
    """The curves of HEADLINE_ATTACKS that are present, in that order."""
    return {name: curves[name] for name in HEADLINE_ATTACKS if name in curves}


def _lowest_decade(curves: Mapping[str, Mapping[str, Any]]) -> float:
    """The decade below the lowest measurable FPR of the curves (1 / non-members), at least FPR_RANGE[0]:
    the axes start there rather than at 1e-5 with empty decades."""
    lowest = min((float(curve["fpr"][0]) for curve in curves.values()), default=FPR_RANGE[0])
    return max(FPR_RANGE[0], 10.0 ** np.floor(np.log10(lowest) + 1e-9))


def plot_roc(
    curves: Mapping[str, Mapping[str, Any]], path: str | Path, *, title: str | None = None, note: str | None = None
) -> None:
    """Log-log ROC, both axes from the decade of the lowest measurable FPR (at least 1e-5) to 1, the diagonal
    dashed, one curve per attack; the legend (each attack's AUC and TPR at 0.1% FPR) sits right of the axes
    so that it hides no curve.

    curves: {attack: {fpr, tpr, tpr_low, tpr_high} from `roc_plot_data`, plus "auc" and "tpr_at_fpr"
    as in metrics.json}. Up to BAND_CURVES curves get their Clopper-Pearson band shaded; more would be a blur.
    Beyond 10 curves, line styles repeat the 10 colours distinguishably. note: stored in the file's metadata.
    """
    figure, axes = plt.subplots(figsize=(8.5, 5.6))
    colours = plt.get_cmap("tab10")
    floor = _lowest_decade(curves)
    few = len(curves) <= 8  # the legend fits beside the axes in a larger font
    for index, (name, curve) in enumerate(curves.items()):
        colour = colours(index % 10)
        tpr_at = curve.get("tpr_at_fpr", {}).get("0.001")
        at = "n/m" if tpr_at is None else f"{tpr_at:.2%}"
        axes.plot(
            curve["fpr"],
            np.maximum(curve["tpr"], floor),
            color=colour,
            lw=1.4,
            ls=LINE_STYLES[index // 10 % len(LINE_STYLES)],
            label=f"{name}\nAUC {curve['auc']:.3f}, TPR@0.1% {at}",
            drawstyle="steps-post",
        )
        if len(curves) <= BAND_CURVES:
            axes.fill_between(
                curve["fpr"],
                np.maximum(curve["tpr_low"], floor),
                np.maximum(curve["tpr_high"], floor),
                color=colour,
                alpha=0.12,
                lw=0,
                step="post",
            )
    axes.plot((floor, 1.0), (floor, 1.0), "k--", lw=0.8, label="chance")
    axes.set(
        xscale="log",
        yscale="log",
        xlim=(floor, 1.0),
        ylim=(floor, 1.0),
        xlabel="false positive rate",
        ylabel="true positive rate",
        title=title or "membership inference ROC",
    )
    axes.set_aspect("equal")
    axes.grid(True, which="major", alpha=0.3)
    axes.legend(
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        fontsize=9 if few else 7.5,
        frameon=False,
        labelspacing=0.8 if few else 0.45,
    )
    save_figure(figure, path, note=note)


def plot_score_distributions(
    scores: ExampleArray,
    keep: np.ndarray,
    examples: Sequence[int],
    path: str | Path,
    *,
    target: int | None = None,
    view: int = 0,
    bins: int = 30,
    note: str | None = None,
) -> None:
    """For each chosen example, histograms of φ over its IN and OUT models (one view) and the
    Gaussians LiRA fits to them (median, std); with a target, it is left out of both sets and its own
    score is marked. scores: float32[M, N, V]; keep: bool[M, N]; note: stored in the file's metadata."""
    num_models, num_examples, num_views = scores.shape
    examples = [int(example) for example in examples]
    if not examples or min(examples) < 0 or max(examples) >= num_examples or not 0 <= view < num_views:
        raise UserError(f"examples must lie in [0, {num_examples}) and view in [0, {num_views})")
    columns = min(len(examples), 4)
    rows = -(-len(examples) // columns)
    figure, grid = plt.subplots(rows, columns, figsize=(3.6 * columns, 2.8 * rows), squeeze=False)
    shadows = np.ones(num_models, dtype=bool)
    if target is not None:
        shadows[target] = False
    for axes, example in zip(grid.flat, examples, strict=False):
        values = read_examples(scores, example, example + 1)[:, 0, view].astype(np.float64)
        for members, colour, name in ((keep[:, example], "tab:red", "IN"), (~keep[:, example], "tab:blue", "OUT")):
            chosen = values[members & shadows]
            if len(chosen) == 0:
                continue
            centre, spread = np.median(chosen), max(np.std(chosen), 1e-6)
            axes.hist(chosen, bins=bins, density=True, alpha=0.35, color=colour, label=f"{name} ({len(chosen)})")
            xs = np.linspace(values.min() - spread, values.max() + spread, 200)
            axes.plot(xs, np.exp(-0.5 * ((xs - centre) / spread) ** 2) / (spread * np.sqrt(2 * np.pi)), color=colour)
        if target is not None:
            axes.axvline(values[target], color="k", lw=1, ls=":", label="target")
        axes.set_title(f"example {example}", fontsize=9)
        axes.set_xlabel("φ (logit-scaled confidence)", fontsize=8)
        axes.legend(fontsize=7)
    for axes in list(grid.flat)[len(examples) :]:
        axes.axis("off")
    figure.tight_layout()
    save_figure(figure, path, note=note)
