"""The result of an audit, as `lira_jax.audit_logits` returns it and `python -m lira_jax.attack` writes it.

`Audit` holds the metrics.json dict, each attack's ROC sampled for plotting, and the per-example table, and
writes them: metrics.json, metrics.csv, examples.csv, roc.png, report.html (each whole or not at all).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from lira_jax.audit import per_example
from lira_jax.audit.report import format_table, metrics_csv
from lira_jax.errors import UserError
from lira_jax.writing import strict_json, write_atomically


@dataclass(frozen=True)
class Audit:
    """metrics: the metrics.json dict (DESIGN.md); examples: the per-example table, {column: [N]}
    (`lira_jax.audit.per_example.example_table`); curves: {attack: ROC sampled for plotting, with its metrics};
    title: what the plots and the report call the audited models; accuracy: {"train": [T], "test": [T]} of each
    target on its members and non-members (first view), when the logits were at hand."""

    metrics: dict[str, Any]
    examples: dict[str, np.ndarray]
    curves: dict[str, dict[str, Any]] = field(repr=False)
    title: str = "audit"
    accuracy: dict[str, list[float]] | None = None
    _figures: dict[bool, bytes] = field(default_factory=dict, init=False, repr=False, compare=False)

    def table(self) -> str:
        """The attack table as `python -m lira_jax.attack` prints it."""
        return format_table(self.metrics)

    def top_lines(self, count: int, attack: str | None = None) -> list[str]:
        """The `count` most exposed examples by `attack` (default: the first headline attack audited)."""
        return per_example.top_lines(self.examples, attack or self.ranking_attack(), count)

    def ranking_attack(self) -> str:
        """The attack examples are ranked by: the first of the headline attacks that was run, else the first."""
        attack = per_example.ranking_attack(self.examples)
        if attack is None:
            raise UserError("no attack was scored, so no example can be ranked")
        return attack

    def roc_png(self, *, headline: bool = False) -> bytes:
        """The log-log ROC of every attack (headline: only lira_online, lira_online_fixed_var, lira_offline,
        rmia_online and global_threshold) as PNG bytes, drawn once: roc.png and report.html share it."""
        if headline not in self._figures:
            from lira_jax.audit import plots

            curves = plots.headline_curves(self.curves) if headline else self.curves
            self._figures[headline] = plots.roc_png(curves, title=self.title)
        return self._figures[headline]

    def plot_roc(self, path: str | Path, *, headline: bool = False) -> None:
        """`roc_png` written to `path` (a PNG)."""
        _write(path, self.roc_png(headline=headline))

    def to_html(
        self,
        path: str | Path,
        *,
        images: npt.ArrayLike | None = None,
        accuracy: Mapping[str, Sequence[float]] | None = None,
        config_text: str | None = None,
        title: str | None = None,
        top: int = 12,
    ) -> None:
        """report.html, self-contained. images: the inputs [N, H, W(, C)] or [N, H*W], drawn as thumbnails of
        the most exposed examples; accuracy: {"train": [M], "test": [M]} per model (default: the targets'
        accuracy from their logits); config_text: shown verbatim."""
        from lira_jax.audit.html_report import build_report, shows_headline

        figures = {"every": self.roc_png()}
        if shows_headline(self.curves):
            figures["headline"] = self.roc_png(headline=True)
        page = build_report(
            self.metrics,
            self.curves,
            title=title or self.title,
            examples=self.examples,
            top=top,
            accuracy=accuracy if accuracy is not None else self.accuracy,
            images=None if images is None else np.asarray(images),
            config_text=config_text,
            figures=figures,
        )
        _write(path, page)

    def write_metrics_json(self, path: str | Path) -> None:
        _write(path, json.dumps(strict_json(self.metrics), indent=1, allow_nan=False) + "\n")

    def write_metrics_csv(self, path: str | Path) -> None:
        """One row per attack, for spreadsheets."""
        _write(path, metrics_csv(self.metrics))

    def write_examples_csv(self, path: str | Path) -> None:
        """One row per example: example, label, members, then <attack>_in, _out and _flagged per attack."""
        _write(path, per_example.table_csv(self.examples))


def _writable(path: str | Path) -> Path:
    path = Path(path)
    if not path.parent.is_dir():
        raise UserError(f"cannot write {path}: {path.parent} is not a directory")
    return path


def _write(path: str | Path, content: str | bytes) -> None:
    write_atomically(_writable(path), content)
