"""Log-scale ROC curves with Clopper-Pearson bands, and the IN/OUT score distributions LiRA fits.

Matplotlib runs on the Agg backend (files only, no display needed).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

from lira_jax.audit.metrics import PLOT_FPR_RANGE
from lira_jax.audit.report.per_example import BAND_CURVES, HEADLINE_ATTACKS
from lira_jax.audit.streaming import ExampleArray, read_examples
from lira_jax.errors import UserError
from lira_jax.writing import atomic_path, disk_errors

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import LogLocator  # noqa: E402

# Every curve its own colour (tab10, then seven more that stay apart from it on white), and each attack
# family its own line style, so that 17 curves stay legible.
COLOURS = (
    *(f"C{index}" for index in range(10)),
    "#000080",
    "#800000",
    "#008080",
    "#b8860b",
    "#ff00ff",
    "#556b2f",
    "#4b0082",
)
FAMILY_STYLES = (  # (attack names, or prefixes ending in "_"; line style); any other attack: solid
    (("lira_",), "-"),
    (("rmia_",), (0, (6, 2))),
    (("loss", "calibrated_loss", "global_threshold"), (0, (6, 2, 1, 2))),
    (("confidence", "entropy", "modified_entropy", "correctness"), (0, (1, 1.5))),
    (("shokri", "ml_leaks_"), (0, (4, 1.5, 1, 1.5, 1, 1.5))),
)
ROC_SIDE = 4.6  # inches: the square axes of the ROC; the legend takes LEGEND_WIDTH beside them
LEGEND_WIDTH = 3.0
MARGINS = (0.75, 0.55, 0.45)  # left, bottom, top (inches)


def save_figure(figure: Any, path: str | Path, dpi: int = 150, note: str | None = None) -> None:
    """Writes the figure whole or not at all (temporary file, then rename); an OSError is one line. note: a
    line stored in the file's metadata (PNG and SVG "Description", PDF "Subject"), e.g. the invocation id."""
    path = Path(path)
    metadata = figure_metadata(path.suffix.lower().lstrip("."), note)
    try:
        with disk_errors(path), atomic_path(path) as temporary:
            figure.savefig(temporary, dpi=dpi, bbox_inches="tight", metadata=metadata)
    finally:
        plt.close(figure)


def figure_metadata(image_format: str, note: str | None) -> dict[str, str] | None:
    """Matplotlib's metadata for a figure file carrying `note`: PDF's "Subject", every other format's
    "Description"; None without a note."""
    return None if note is None else {"Subject" if image_format == "pdf" else "Description": note}


def headline_curves(curves: Mapping[str, Any]) -> dict[str, Any]:
    """The curves of HEADLINE_ATTACKS that are present, in that order."""
    return {name: curves[name] for name in HEADLINE_ATTACKS if name in curves}


def line_style(name: str) -> Any:
    """The line style of an attack's family (FAMILY_STYLES); solid for any other name."""
    for names, style in FAMILY_STYLES:
        if any(name == known or (known.endswith("_") and name.startswith(known)) for known in names):
            return style
    return "-"


def _lowest_decade(curves: Mapping[str, Mapping[str, Any]]) -> float:
    """The decade below the lowest measurable FPR of the curves (1 / non-members), at least PLOT_FPR_RANGE[0]:
    the axes start there rather than at 1e-5 with empty decades."""
    lowest = min((float(curve["fpr"][0]) for curve in curves.values()), default=PLOT_FPR_RANGE[0])
    return max(PLOT_FPR_RANGE[0], 10.0 ** np.floor(np.log10(lowest) + 1e-9))


def roc_image(
    curves: Mapping[str, Mapping[str, Any]],
    *,
    title: str | None = None,
    image_format: str = "png",
    note: str | None = None,
    dpi: int = 150,
) -> bytes:
    """The log-log ROC as the bytes of an image file (`image_format`: png, pdf, svg, ...): both axes from the
    decade of the lowest measurable FPR (at least 1e-5) to 1, the diagonal dashed, one curve per attack (its
    own colour, its family's line style); the legend (each attack's AUC and TPR at 0.1% FPR) sits right of
    the axes so that it hides no curve. note: stored in the file's metadata (e.g. the invocation id).

    curves: {attack: {fpr, tpr, tpr_low, tpr_high} from `metrics.roc_plot_data`, plus "auc" and
    "tpr_at_fpr" as in metrics.json}. Up to BAND_CURVES curves get their Clopper-Pearson band shaded; more
    would be a blur. Drawn once, in a layout fixed in inches (a tight bounding box would draw everything
    twice); the figure grows taller with the legend."""
    few = len(curves) <= 8  # the legend fits beside the axes in a larger font
    left, bottom, top = MARGINS
    height = max(bottom + ROC_SIDE + top, 0.32 * (len(curves) + 1) + 0.5)
    width = left + ROC_SIDE + 0.2 + LEGEND_WIDTH
    figure = Figure(figsize=(width, height))
    axes = figure.add_axes((left / width, (height - top - ROC_SIDE) / height, ROC_SIDE / width, ROC_SIDE / height))
    floor = _lowest_decade(curves)
    for index, (name, curve) in enumerate(curves.items()):
        colour = COLOURS[index % len(COLOURS)]
        tpr_at = curve.get("tpr_at_fpr", {}).get("0.001")
        at = "n/m" if tpr_at is None else f"{tpr_at:.2%}"
        axes.plot(
            curve["fpr"],
            np.maximum(curve["tpr"], floor),
            color=colour,
            lw=1.4,
            ls=line_style(name),
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
    axes.plot((floor, 1.0), (floor, 1.0), color="0.3", ls="--", lw=0.8, label="chance")
    axes.set(
        xscale="log",
        yscale="log",
        xlim=(floor, 1.0),
        ylim=(floor, 1.0),
        xlabel="false positive rate",
        ylabel="true positive rate",
    )
    axes.set_title(title or "membership inference ROC", fontsize=11, y=1.01)  # placed, not measured: faster
    for axis in (axes.xaxis, axes.yaxis):  # minor ticks at 2 and 5 of each decade: a third of matplotlib's ticks
        axis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
    axes.grid(True, which="major", alpha=0.3)
    figure.legend(
        *axes.get_legend_handles_labels(),
        loc="upper left",
        bbox_to_anchor=((left + ROC_SIDE + 0.2) / width, 1 - 0.1 / height),
        fontsize=9 if few else 7.5,
        frameon=False,
        labelspacing=0.8 if few else 0.45,
        handlelength=3.2,
    )
    buffer = io.BytesIO()
    figure.savefig(buffer, format=image_format, dpi=dpi, metadata=figure_metadata(image_format, note))
    return buffer.getvalue()


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
