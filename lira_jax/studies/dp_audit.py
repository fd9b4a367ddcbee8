"""`dp-audit RUN`: does DP-SGD and its accounting keep the promised ε? The accounted ε of models.json against two
empirical lower bounds from the run's canaries (RUN/canaries.json): many-run and one-run (`dp_bounds`)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from lira_jax.audit.inputs.canaries import CANARIES_FILE, read_canaries
from lira_jax.audit.streaming import read_examples
from lira_jax.errors import UserError
from lira_jax.studies.common import Run, StudyResult, markdown_table, number
from lira_jax.studies.dp_bounds import BoundOptions, many_runs, one_run
from lira_jax.studies.plots import pyplot, save

DEFAULT_DELTA = 1e-5  # a run without DP-SGD states no δ: the bounds are given at the trainer's default


def _accounting(run: Run) -> tuple[list[float] | None, float]:
    """(each model's accounted ε, or None for a run without DP-SGD; the run's δ) from models.json's records."""
    records = run.records or []
    epsilons = [record.get("dp_epsilon") for record in records]
    deltas = {record.get("dp_delta") for record in records} - {None}
    if len(deltas) > 1:
        raise UserError(f"{run.path}: the models' records give several δ ({sorted(deltas)}); one run has one δ")
    delta = deltas.pop() if deltas else run.config.train.dp_delta if run.config else DEFAULT_DELTA
    if all(value is None for value in epsilons):
        return None, float(delta)
    if any(not isinstance(value, int | float) or not value >= 0 for value in epsilons):
        raise UserError(f"{run.path}: every done model's record must give dp_epsilon ≥ 0, or none of them")
    return [float(value) for value in epsilons], float(delta)


def study_dp_audit(run: Run, options: dict[str, Any]) -> StudyResult:
    """The accounted ε (the largest over the models: the promise the run makes) against the many-run and the
    one-run lower bound on the canaries' φ (mean over query views), each at confidence 1 − (1 − c) / 2 so that
    the verdict `consistent` (no bound above the accounted ε) holds at the asked confidence c.

    The figure is drawn from {accounted: float | None, many_runs: float, one_run: float, per_model: float[M]}.
    """
    confidence = options["confidence"]
    if not (isinstance(confidence, float | int) and 0 < confidence < 1):
        raise UserError(f"--confidence must be a number in (0, 1), got {confidence!r}")
    canaries = read_canaries(run.path, run.num_examples)
    if canaries is None:
        raise UserError(
            f"{run.path} has no {CANARIES_FILE}: dp-audit audits canaries (train with [canaries] count > 0)"
        )
    if run.keep.shape[0] < 4:
        raise UserError(
            f"dp-audit needs at least 4 finished models (2 to choose, 2 to count), {run.path} has {run.keep.shape[0]}"
        )
    epsilons, delta = _accounting(run)
    accounted = None if epsilons is None else max(epsilons)
    phi = read_examples(run.scores, canaries.first, run.num_examples).astype(np.float64).mean(axis=2)
    keep = run.keep[:, canaries.first :]
    each = 1 - (1 - confidence) / 2
    bounds = BoundOptions(confidence=each, delta=delta, seed=options["seed"])
    many, single = many_runs(phi, keep, bounds), one_run(phi, keep, bounds)
    consistent = accounted is None or (many["epsilon"] <= accounted and single["epsilon"] <= accounted)
    sampling = getattr(run.config.train, "dp_sampling", None) if run.config else None
    data = {
        "canaries": {"count": canaries.count, "kind": canaries.kind},
        "num_models": int(run.keep.shape[0]),
        "delta": delta,
        "dp_sampling": sampling,
        "epsilon_accounted": accounted,
        "epsilon_accounted_range": None if epsilons is None else [min(epsilons), max(epsilons)],
        "epsilon_lower_bound": {"many_runs": many, "one_run": single},
        "confidence": confidence,
        "consistent": consistent,
    }
    rows = [
        ["many runs", number(many["epsilon"]), f"{each:g}", _many_detail(many)],
        ["one run", number(single["epsilon"]), f"{each:g}", _one_detail(single, len(run.models))],
    ]
    promise = "∞ (no DP-SGD)" if accounted is None else f"{accounted:.3f} at δ = {delta:g}"
    text = "\n\n".join(
        [
            f"{canaries.count} {canaries.kind} canaries in {len(run.models)} models; φ mean over the query views;"
            f" accounted ε {promise}" + (f"; sampler {sampling}" if sampling else ""),
            markdown_table(["lower bound", "ε", "confidence", "how"], rows),
            _verdict(consistent, accounted, confidence),
        ]
    )
    drawing = {"accounted": accounted, "many_runs": many["epsilon"], "one_run": single["epsilon"]}
    return text, data, {**drawing, "per_model": np.array(single["per_model"])}


def _many_detail(many: dict[str, Any]) -> str:
    counts = many["counts"]
    return (
        f"{many['statistic']} and its threshold chosen on {many['selection_models']} models, counted on "
        f"{many['counting_models']}: "
        f"TP {counts['true_positives']}, FP {counts['false_positives']}, TN {counts['true_negatives']}, "
        f"FN {counts['false_negatives']}"
    )


def _one_detail(single: dict[str, Any], num_models: int) -> str:
    return (
        f"best of {num_models} models x k in {single['guess_counts']} (Bonferroni): "
        f"{single['best_correct']} of {single['best_guesses']} guesses right"
    )


def _verdict(consistent: bool, accounted: float | None, confidence: float) -> str:
    if accounted is None:
        return "consistent: true (no DP-SGD: no finite ε is promised, so no bound can contradict it)"
    if consistent:
        return f"consistent: true (no lower bound above the accounted ε; the verdict holds at {confidence:g})"
    return (
        f"consistent: false: a lower bound exceeds the accounted ε at {confidence:g} confidence, so the models do "
        "not keep the promise: an implementation bug (clipping, noise, sampling) or an accounting bug (the "
        "accountant told other settings than were run, or a sampler it does not prove)"
    )


def plot_dp_audit(drawing: dict[str, Any], path: Path) -> None:
    """The two lower bounds as bars, each model's one-run bound as points, the accounted ε as a dashed line."""
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(5.5, 3.8))
    axes.bar([0, 1], [drawing["many_runs"], drawing["one_run"]], color=["tab:red", "tab:orange"], width=0.6)
    per_model = drawing["per_model"]
    jitter = np.random.default_rng(0).uniform(-0.2, 0.2, len(per_model))
    axes.plot(2 + jitter, per_model, ".", color="tab:orange", alpha=0.4, ms=3)
    accounted = drawing["accounted"]
    if accounted is not None and math.isfinite(accounted):
        axes.axhline(accounted, color="k", ls="--", lw=1, label=f"accounted ε = {accounted:.2f}")
        axes.legend(fontsize=8)
    else:
        axes.set_title("no DP-SGD: accounted ε = ∞", fontsize=9)
    axes.set_xticks([0, 1, 2], ["many runs", "one run\n(combined)", "one run\n(per model)"], fontsize=8)
    axes.set(ylabel="ε lower bound")
    axes.grid(True, axis="y", alpha=0.3)
    save(figure, path)
