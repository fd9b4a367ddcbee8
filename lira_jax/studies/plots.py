"""What the studies' figures share: size, the floor of log axes, and matplotlib, imported only when drawing.

Figures are small (dpi 100): they go into docs/ and version control.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

DPI = 100
TPR_FLOOR = 1e-4  # zero TPRs are drawn here on log axes


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend; a study imports it here, once its numbers are in."""
    from lira_jax.audit import plots  # noqa: F401  (importing it chooses the Agg backend, which must come first)

    # isort: split
    import matplotlib.pyplot as plt

    return plt


def save(figure: Any, path: Path) -> None:
    """Writes a study's figure whole or not at all, at the studies' size, and closes it."""
    from lira_jax.audit.plots import save_figure

    save_figure(figure, path, dpi=DPI)
