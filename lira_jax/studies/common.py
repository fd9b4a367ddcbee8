"""What the studies share: a run folder restricted to its finished models, and the formatting of their tables."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lira_jax.audit.inputs.canaries import read_canaries, without_canaries
from lira_jax.audit.inputs.checked import check_logits
from lira_jax.audit.inputs.sources import done_model_arrays, open_source
from lira_jax.audit.inputs.targets import parse_targets
from lira_jax.audit.registry import choose_attacks
from lira_jax.audit.streaming import ModelSubset, map_example_chunks
from lira_jax.config import Config
from lira_jax.errors import UserError
from lira_jax.store import MODELS_FILE, scores_shape

LOW_FPR = "0.001"  # the FPR every study reports TPR at (0.1%)
LOWEST_FPR = "1e-05"

# What a study returns: (the markdown table it prints, the JSON data it writes, what its figure is drawn from)
StudyResult = tuple[str, dict[str, Any], dict[str, Any]]


@dataclass
class Run:
    """A run folder restricted to its finished models (M of them, positions 0..M−1).

    keep: bool[M, N]; labels: int[N]; scores: float32[M, N, V]; logits: float[M, N, V, C] or None;
    models: the models' indices in the folder; records: their models.json records (or None);
    config: config.toml (or None for folders written by other tools).
    """

    path: Path
    keep: np.ndarray
    labels: np.ndarray
    scores: np.ndarray | ModelSubset
    logits: np.ndarray | ModelSubset | None
    models: list[int]
    records: list[dict[str, Any]] | None
    config: Config | None

    @property
    def num_examples(self) -> int:
        return self.keep.shape[1]

    def default_attacks(self) -> list[str]:
        """Every attack the folder allows, as `python -m lira_jax.attack` runs by default."""
        return choose_attacks(None, self.path, self.logits is not None, None, has_transfer=False)

    def identity_view(self) -> int:
        """Position of the identity query view (the only view of a folder without config.toml)."""
        views = self.config.query.views if self.config else ()
        if "identity" in views:
            return views.index("identity")
        if not views and self.scores.shape[2] == 1:
            return 0
        raise UserError(f"{self.path} has no identity query view (views: {list(views) or '?'}), which this study reads")

    def accuracies(self) -> tuple[np.ndarray, np.ndarray]:
        """(train, test) accuracy of each model from models.json: float64[M] each."""
        try:
            train = [float(record["train_accuracy"]) for record in self.records or []]
            test = [float(record["test_accuracy"]) for record in self.records or []]
        except (KeyError, TypeError, ValueError):
            train = test = []
        if len(train) != len(self.models):
            raise UserError(f"{self.path / MODELS_FILE} must give train_accuracy and test_accuracy of every done model")
        return np.array(train), np.array(test)

    def targets(self, spec: str) -> list[int]:
        """Positions (0..M−1) of the target models named by `--targets` (model indices in the folder)."""
        return [self.models.index(model) for model in parse_targets(spec, self.models)]


def open_run(path: str | Path, with_canaries: bool = False) -> Run:
    """Opens and checks a run folder (`sources.open_source`, and its logits against labels and scores), restricted to
    its done models with their records and config when it has them, and to its ordinary examples unless
    with_canaries (RUN/canaries.json: the attack tables leave canaries out, as the attack does)."""
    path = Path(path)
    loaded = open_source(path, None, "run", None)  # a trained run's scores.npy checked against its logits
    if loaded["logits"] is not None:
        check_logits(loaded["logits"], loaded["labels"], scores_shape(loaded))
    canaries = None if with_canaries else read_canaries(path, loaded["keep"].shape[1])
    if canaries is not None:
        loaded = without_canaries(loaded, canaries)
    scores, logits, keep = done_model_arrays(loaded)
    return Run(
        path=path,
        keep=keep,
        labels=loaded["labels"],
        scores=scores,
        logits=logits,
        models=loaded["models"],
        records=loaded["records"],
        config=loaded["config"],
    )


def identity_view_arrays(run: Run, correctness: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """(φ float32[M, N], correct bool[M, N] or None) on the identity view; correct: argmax of the logits is the
    label, which needs logits.npy."""
    view = run.identity_view()
    if correctness and run.logits is None:
        raise UserError(f"{run.path} has no logits.npy: telling correct from wrong predictions needs the logits")
    arrays = [run.scores] + ([run.logits] if correctness else [])

    def work(start: int, stop: int, values: np.ndarray, *logits: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        correct = logits[0][:, :, view].argmax(axis=-1) == run.labels[start:stop] if logits else None
        return values[:, :, view], correct

    row_bytes = 4 * run.scores.shape[2] + (
        run.logits.dtype.itemsize * math.prod(run.logits.shape[2:]) if correctness else 0
    )
    parts = map_example_chunks(work, arrays, run.num_examples, run.keep.shape[0] * row_bytes)
    phi = np.concatenate([part[0] for part in parts], axis=1)
    return phi, np.concatenate([part[1] for part in parts], axis=1) if correctness else None


# ---------------------------------------------------------------------------------------------------
# Formatting of the tables


def percent(value: float | None, interval: Sequence[float] | None = None) -> str:
    """`12.34%`, with ` [low%, high%]` when given an interval; n/m (not measurable) for None."""
    if value is None:
        return "n/m"
    text = f"{value:.2%}"
    return text if interval is None else f"{text} [{interval[0]:.2%}, {interval[1]:.2%}]"


def number(value: float | None, digits: int = 3) -> str:
    """The value with `digits` decimals; – for None or NaN."""
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table: one header row, then one line per row (cells shown with str)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def tpr_cell(metrics: dict[str, Any] | None, level: str = LOW_FPR) -> str:
    """TPR at FPR `level` with its Clopper-Pearson interval, from an `attack_metrics` dict."""
    point = metrics["at_fpr"][level] if metrics else None
    return "–" if metrics is None else percent(point and point["tpr"], point and point["tpr_interval"])
