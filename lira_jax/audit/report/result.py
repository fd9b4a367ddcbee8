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

from lira_jax.audit.inputs import arguments
from lira_jax.audit.inputs.checked import AttackInputs
from lira_jax.audit.report import per_example
from lira_jax.audit.report.table import format_table, metrics_csv
from lira_jax.errors import UserError
from lira_jax.outputs import Protected, check_figure_path, refuse_outputs
from lira_jax.writing import strict_json, write_atomically

BESIDE_JSON = ("examples.csv", "metrics.csv", "report.html")  # written next to metrics.json


@dataclass(frozen=True)
class Audit:
    """metrics: the metrics.json dict (DESIGN.md); examples: the per-example table, {column: [N]}
    (`lira_jax.audit.report.per_example.example_table`); curves: {attack: ROC sampled for plotting, with its metrics};
    title: what the plots and the report call the audited models; accuracy: {"train": [T], "test": [T]} of each
    target on its members and non-members (first view), when the logits were at hand; reads: files the audit
    read (memmapped inputs), which its writers refuse to overwrite.

    Every method checks its arguments as the command line checks its options (one UserError naming the
    argument), and every path as an output of the command line: a new path or a regular file in an existing
    folder, never an input the audit read."""

    metrics: dict[str, Any]
    examples: dict[str, np.ndarray]
    curves: dict[str, dict[str, Any]] = field(repr=False)
    title: str = "audit"
    accuracy: dict[str, list[float]] | None = None
    reads: tuple[Path, ...] = ()
    _figures: dict[bool, bytes] = field(default_factory=dict, init=False, repr=False, compare=False)

    def table(self) -> str:
        """The attack table as `python -m lira_jax.attack` prints it."""
        return format_table(self.metrics)

    def top_lines(self, count: int, attack: str | None = None) -> list[str]:
        """The `count` most exposed examples by `attack` (default: the first headline attack audited)."""
        count = arguments.integer(count, "count", 0)
        if attack is not None:
            arguments.choice(attack, "attack", self.ranked_attacks())
        return per_example.top_lines(self.examples, attack or self.ranking_attack(), count)

    def ranked_attacks(self) -> list[str]:
        """The attacks with per-example results (those that were scored)."""
        return [column.removesuffix("_flagged") for column in self.examples if column.endswith("_flagged")]

    def ranking_attack(self) -> str:
        """The attack examples are ranked by: the first of the headline attacks that was run, else the first."""
        attack = per_example.ranking_attack(self.examples)
        if attack is None:
            raise UserError("no attack was scored, so no example can be ranked")
        return attack

    def roc_png(self, *, headline: bool = False) -> bytes:
        """The log-log ROC of every attack (headline: only lira_online, lira_online_fixed_var, lira_offline,
        rmia_online and global_threshold) as PNG bytes carrying the invocation id, drawn once: roc.png and
        report.html share it."""
        headline = arguments.flag(headline, "headline")
        if headline not in self._figures:
            self._figures[headline] = self._roc_image(headline, "png")
        return self._figures[headline]

    def plot_roc(self, path: str | Path, *, headline: bool = False) -> None:
        """The ROC of `roc_png` written to `path`, in the format its suffix names (.png, .pdf or .svg)."""
        path = self._output(path, "path", figure=True)
        headline = arguments.flag(headline, "headline")
        image_format = path.suffix.lower().lstrip(".")
        content = self.roc_png(headline=headline) if image_format == "png" else self._roc_image(headline, image_format)
        write_atomically(path, content)

    def _roc_image(self, headline: bool, image_format: str) -> bytes:
        from lira_jax.audit.report import plots

        curves = plots.headline_curves(self.curves) if headline else self.curves
        return plots.roc_image(curves, title=self.title, image_format=image_format, note=self.invocation_note())

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
        accuracy from their logits); config_text: shown verbatim; top: how many exposed examples are listed."""
        path = self._output(path, "path")
        num_examples = self.metrics["num_examples"]
        images = None if images is None else arguments.images(images, num_examples)
        sizes = (len(self.metrics.get("targets", [])), self.metrics.get("num_models", 0))
        accuracy = self.accuracy if accuracy is None else arguments.accuracy(accuracy, sizes)
        config_text = arguments.text(config_text, "config_text", optional=True)
        title = arguments.text(title, "title", optional=True)
        top = arguments.integer(top, "top", 0)
        from lira_jax.audit.report.html_report import build_report, shows_headline

        figures = {"every": self.roc_png()}
        if shows_headline(self.curves):
            figures["headline"] = self.roc_png(headline=True)
        page = build_report(
            self.metrics,
            self.curves,
            title=title or self.title,
            examples=self.examples,
            top=top,
            accuracy=accuracy,
            images=images,
            config_text=config_text,
            figures=figures,
        )
        write_atomically(path, page)

    def write_metrics_json(self, path: str | Path) -> None:
        path = self._output(path, "path")
        write_atomically(path, json.dumps(strict_json(self.metrics), indent=1, allow_nan=False) + "\n")

    def write_metrics_csv(self, path: str | Path) -> None:
        """One row per attack, for spreadsheets; the last column is the invocation id."""
        path = self._output(path, "path")
        write_atomically(path, _with_invocation(metrics_csv(self.metrics), self.metrics.get("invocation")))

    def write_examples_csv(self, path: str | Path) -> None:
        """One row per example: example, label, members, then <attack>_in, _out and _flagged per attack; the
        last column is the invocation id."""
        path = self._output(path, "path")
        text = per_example.table_csv(self.examples)
        write_atomically(path, _with_invocation(text, self.metrics.get("invocation")))

    def _output(self, path: Any, name: str, figure: bool = False) -> Path:
        """path checked as an output of the command line (`lira_jax.outputs.refuse_outputs`)."""
        path = arguments.path(path, name)
        refuse_outputs({name: path}, Protected().add_files(self.reads, "an input of this audit"))
        if figure:
            check_figure_path(path, name)
        return path

    def invocation_note(self) -> str | None:
        """What figures carry in their metadata: the invocation id shared by every output of this audit."""
        invocation = self.metrics.get("invocation")
        return None if invocation is None else f"lira-jax audit, invocation {invocation}"


def _with_invocation(text: str, invocation: str | None) -> str:
    """CSV text with an `invocation` column appended to every line (nothing appended where there is none)."""
    if invocation is None:
        return text
    lines = text.split("\n")
    ending = lines.pop() if lines and lines[-1] == "" else None
    lines = [f"{lines[0]},invocation", *(f"{line},{invocation}" for line in lines[1:])]
    return "\n".join(lines) + ("\n" if ending is not None else "")


def write_outputs(
    audit: Audit,
    json_path: Path,
    plot_path: Path,
    inputs: AttackInputs,
    distributions: Sequence[int] | None,
    distributions_path: str | Path | None,
    run: dict[str, Any],
) -> dict[str, Path]:
    """roc.png (and the score distributions of the first target), examples.csv, metrics.csv and report.html
    beside metrics.json, then metrics.json, each written whole (inside an `output_set`: as one set);
    returns {what: path}."""
    audit.plot_roc(plot_path)
    written = {"ROC (every attack)": plot_path}
    if distributions is not None:
        from lira_jax.audit.report import plots

        target = int(inputs.targets[0])
        plots.plot_score_distributions(
            inputs.scores, inputs.keep, distributions, distributions_path, target=target, note=audit.invocation_note()
        )
        written["score distributions"] = Path(distributions_path)
    examples_csv, metrics_csv, report_html = (json_path.parent / name for name in BESIDE_JSON)
    audit.write_examples_csv(examples_csv)
    audit.write_metrics_csv(metrics_csv)
    audit.to_html(report_html, images=run.get("inputs"), config_text=run.get("config_text"))
    audit.write_metrics_json(json_path)
    written.update({"per example": examples_csv, "per attack (CSV)": metrics_csv, "report": report_html})
    return {"metrics (JSON)": json_path, **written}
