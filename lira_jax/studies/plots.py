"""What the studies' figures share: size, zeros on log axes, and matplotlib, imported only when drawing.

Figures are small (dpi 100): they go into docs/ and version control.

A TPR of 0 (not one member found at that FPR) has no place on a log axis. It is drawn as a hollow marker on
a dotted line labelled "TPR 0", a decade below both the chance line (TPR = FPR) and every TPR measured
above 0 (`zero_floor`), so that it never reads as leakage.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

DPI = 100


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend; a study imports it here, once its numbers are in."""
    from lira_jax.audit.report import plots  # noqa: F401  (importing it chooses the Agg backend, which must come first)

    # isort: split
    import matplotlib.pyplot as plt

    return plt


def save(figure: Any, path: Path) -> None:
    """Writes a study's figure whole or not at all, at the studies' size, and closes it."""
    from lira_jax.audit.report.plots import save_figure

    save_figure(figure, path, dpi=DPI)


def zero_floor(chance: float, measured: Iterable[float]) -> float:
    """Where TPRs of 0 are drawn on a log axis of TPR at FPR `chance`: the decade below the chance line and
    below every positive value of `measured` (NaN and None ignored)."""
    positive = [float(value) for value in measured if value is not None and np.isfinite(value) and value > 0]
    return float(10.0 ** (np.floor(np.log10(min([chance, *positive]))) - 1))


def mark_floor(axes: Any, floor: float) -> None:
    """The dotted line at `floor` (`zero_floor`), labelled: a point on it is a TPR of 0."""
    axes.axhline(floor, color="0.55", ls=":", lw=0.8)
    where = {"transform": axes.get_yaxis_transform(), "ha": "right", "va": "bottom"}
    axes.text(0.99, floor, "TPR 0 (no member found)", fontsize=7, color="0.35", **where)


def draw_zeros(axes: Any, x: Any, values: Any, floor: float, colour: Any) -> None:
    """Hollow markers at `floor` where `values` are 0 (x, values: [K] numbers)."""
    x, values = np.asarray(x, dtype=np.float64), np.asarray(values, dtype=np.float64)
    zero = values == 0
    if zero.any():
        axes.plot(x[zero], np.full(zero.sum(), floor), "o", ms=5, mfc="white", mec=colour, mew=1.2, zorder=3)
