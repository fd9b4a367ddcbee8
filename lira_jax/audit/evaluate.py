"""Attacking a run folder: every attack scored per target, pooled into one ROC each, written as metrics.json
(with roc.png, examples.csv, metrics.csv and report.html).

`run_attack` reads keep.npy bool[M, N], labels.npy int[N], scores.npy float32[M, N, V] (and logits.npy
float16|float32[M, N, V, C] when present) through `lira_jax.store.load_run`; only models that models.json
marks done are used. A folder of plain logits needs no scores.npy: φ is computed as the attacks read the
logits, and never written. The LiRA reference code's experiment folders are read by
`lira_jax.audit.readers`. With an epoch E, scores.npy and logits.npy come from the snapshot RUN/epochs/E/. With
a mask, every attack reads the masked output (`lira_jax.audit.masking`): φ is recomputed from the masked
logits. Every input is checked before anything is computed or written (`registry.check_inputs`). The
metrics.json format is in docs/run_folder.md.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from lira_jax.audit.baselines import correctness_rule, top_class_is_label
from lira_jax.audit.classifiers import (
    CLASSIFIERS,
    HIDDEN_UNITS,
    MAX_ROWS,
    MODEL_FOLDS,
    TOP_PROBABILITIES,
    TransferShadow,
)
from lira_jax.audit.inputs import COUNTS, EQUALISED, AttackInputs, AttackOptions, NotApplicable, check_logits
from lira_jax.audit.masking import Mask, check_mask, masked_logits, masked_run, parse_mask
from lira_jax.audit.metrics import FPR_LEVELS, attack_metrics, decision_metrics, roc_curve, roc_plot_data
from lira_jax.audit.per_example import example_table, flag_threshold, most_exposed
from lira_jax.audit.phi import streamed_phi
from lira_jax.audit.registry import LABEL_BLIND, check_inputs, choose_attacks, score_checked
from lira_jax.audit.result import Audit
from lira_jax.audit.sources import inputs_record, open_source, protected_inputs, read_lines
from lira_jax.audit.streaming import ExampleArray, subset_models
from lira_jax.audit.targets import parse_targets
from lira_jax.errors import UserError
from lira_jax.outputs import check_figure_path, invocation_id, refuse_outputs
from lira_jax.store import epoch_folder, load_run, scores_shape
from lira_jax.writing import output_set

ML_LEAKS_ADVERSARY_3 = ("confidence", "entropy")  # thresholds on the maximum probability and on the entropy
BESIDE_JSON = ("examples.csv", "metrics.csv", "report.html")  # written next to metrics.json


def run_attack(
    run_dir: str | Path,
    targets: str = "all",
    json_path: str | Path | None = None,
    plot_path: str | Path | None = None,
    *,
    attacks: Sequence[str] | None = None,
    lira_centre: str = "median",
    lira_counts: str = EQUALISED,
    rmia_a: float = 0.3,
    delta: float = 1e-5,
    distributions_path: str | Path | None = None,
    examples: Sequence[int] | None = None,
    mask: str | None = None,
    epoch: int | None = None,
    shadow_run: str | Path | None = None,
    classifier_rows: int = MAX_ROWS,
    print_table: bool = True,
    source: str = "run",
    labels_path: str | Path | None = None,
    top: int = 0,
) -> dict[str, Any]:
    """Scores every attack on a run folder and writes metrics.json and roc.png (by default into it, or into
    RUN/epochs/E/ with epoch E), with examples.csv, metrics.csv and report.html beside metrics.json; returns
    the metrics dict and prints the table (and the `top` most exposed examples). Defaults: every attack the
    folder allows (those on logits only with logits.npy, ml_leaks_adv2 only with shadow_run); targets
    "all" (every model against all the others, ROC pooled). mask: `top:K`, `round:D` or `label`
    (`lira_jax.audit.masking`), applied to the logits before any attack. source: "run" (our run folder, or
    a folder of plain logits) or "lira-reference" (`lira_jax.audit.readers`; labels_path: their labels)."""
    started = time.perf_counter()
    run_dir = Path(run_dir)
    if not (math.isfinite(delta) and 0 < delta < 1):
        raise UserError(f"--delta must be a finite number in (0, 1), got {delta}")
    if lira_counts not in COUNTS:
        raise UserError(f"--lira-counts must be one of {', '.join(COUNTS)}, got {lira_counts!r}")
    parsed_mask = None if mask is None else parse_mask(mask)
    run = open_source(run_dir, epoch, source, labels_path)
    out_dir = epoch_folder(run_dir, epoch)
    json_path = Path(json_path) if json_path else out_dir / "metrics.json"
    plot_path = Path(plot_path) if plot_path else out_dir / "roc.png"
    beside = json_path.parent  # examples.csv, metrics.csv and report.html go beside metrics.json
    outputs = {"--json": json_path, "--plot": plot_path, "--distributions": distributions_path}
    outputs.update({f"output {name}": beside / name for name in BESIDE_JSON})
    refuse_outputs(outputs, protected_inputs(run, run_dir, source, shadow_run))
    for option in ("--plot", "--distributions"):
        if outputs[option] is not None:
            check_figure_path(outputs[option], option)
    target_ids = parse_targets(targets, run["models"])
    if parsed_mask is not None and run["logits"] is None:
        raise UserError(f"--mask {mask} masks the logits, but {out_dir} has no logits.npy")
    options = AttackOptions(
        lira_centre=lira_centre, lira_counts=lira_counts, rmia_a=rmia_a, classifier_rows=classifier_rows
    )
    attacks, inputs = _run_inputs(run, run_dir, target_ids, parsed_mask, shadow_run, attacks, options)
    num_examples = inputs.keep.shape[1]
    if (
        distributions_path
        and examples is not None
        and not (examples and 0 <= min(examples) <= max(examples) < num_examples)
    ):
        raise UserError(f"--examples must lie in [0, {num_examples}), got {list(examples)}")
    title = f"{run_dir.name}: {len(target_ids)} target(s), {len(run['models'])} models"
    title += "".join([f", epoch {epoch}" if epoch is not None else "", f", mask {mask}" if mask else ""])
    audit = evaluate_inputs(
        inputs,
        attacks,
        target_ids,
        delta=delta,
        epoch=epoch,
        mask=parsed_mask,
        shadow_run=shadow_run,
        title=title,
        quiet=not print_table,
    )
    metrics = audit.metrics
    metrics["inputs"] = inputs_record(run, shadow_run)
    metrics["seconds"] = round(time.perf_counter() - started, 3)
    if len(run["models"]) != run["keep"].shape[0]:
        metrics["models"] = run["models"]
    distributions = None
    if distributions_path:
        distributions = examples if examples is not None else most_exposed(audit.examples, audit.ranking_attack(), 4)
    with output_set():  # all or nothing: moved into place together once every file is written
        written = _write_outputs(audit, json_path, plot_path, inputs, distributions, distributions_path, run)
    if print_table:
        print(audit.table())
        print("\n".join(read_lines(metrics["inputs"], metrics["invocation"])))
        if top:
            print("\n" + "\n".join(audit.top_lines(top)))
        print("\nwritten:\n" + "\n".join(f"  {what:<24}{path}" for what, path in written.items()))
    return metrics


def evaluate_inputs(
    inputs: AttackInputs,
    attacks: Sequence[str],
    target_ids: Sequence[int],
    *,
    delta: float = 1e-5,
    epoch: int | None = None,
    mask: Mask | None = None,
    shadow_run: str | Path | None = None,
    title: str = "audit",
    quiet: bool = False,
) -> Audit:
    """Every attack scored on checked inputs (`registry.check_inputs`), pooled over the targets: the
    metrics.json dict (target_ids: what it calls the targets), each ROC sampled for plotting, and the
    per-example table. The one evaluation behind `python -m lira_jax.attack` and `lira_jax.audit_logits`.
    Progress goes to stderr unless quiet (`progress.attack_progress`)."""
    attack_scores = score_checked(inputs, attacks, quiet=quiet)
    membership = inputs.keep[inputs.targets]
    per_attack, curves, thresholds = _attack_records(membership, attack_scores, delta)
    num_models, num_examples, num_views = inputs.scores.shape
    metrics = {
        "num_models": num_models,
        "num_examples": num_examples,
        "num_views": num_views,
        "targets": [int(target) for target in target_ids],
        "attacks": per_attack,
        **_settings(inputs.options, delta, epoch, mask, attacks, inputs.logits),
        "invocation": invocation_id(),
    }
    accuracy = None
    if inputs.logits is not None:
        correct = top_class_is_label(inputs.logits, inputs.labels, inputs.targets)
        metrics["correctness_rule"] = {"view": 0, **correctness_rule(membership, correct)}
        accuracy = {
            "train": [float(row[members].mean()) for row, members in zip(correct, membership, strict=True)],
            "test": [float(row[~members].mean()) for row, members in zip(correct, membership, strict=True)],
        }
    if any(name in CLASSIFIERS for name in attacks):
        classifier_rows = inputs.options.classifier_rows or MAX_ROWS
        metrics["classifiers"] = _classifiers_record(attacks, len(target_ids), classifier_rows, shadow_run)
    labels = inputs.labels if inputs.labels is not None else np.full(num_examples, -1)
    table = example_table(attack_scores, membership, labels, thresholds=thresholds)
    return Audit(metrics, table, curves, title=title, accuracy=accuracy)


def _run_inputs(
    run: dict[str, Any],
    run_dir: Path,
    target_ids: list[int],
    mask: Mask | None,
    shadow_run: str | Path | None,
    attacks: Sequence[str] | None,
    options: AttackOptions,
) -> tuple[list[str], AttackInputs]:
    """(attacks to run, their checked inputs: the done models, targets at the positions of target_ids,
    masked if asked) of a `load_run` result."""
    models = run["models"]
    transfer = None if shadow_run is None else load_transfer(shadow_run, run_dir)
    attacks = choose_attacks(attacks, run_dir, run["logits"] is not None, mask, transfer is not None)
    scores, logits, keep = done_model_arrays(run)
    positions = [models.index(target) for target in target_ids]
    inputs = check_inputs(
        scores,
        keep,
        positions,
        attacks,
        logits=logits,
        labels=run["labels"],
        transfer=transfer,
        options=options,
        model_ids=models,
    )
    if mask is not None:
        inputs = masked_inputs(inputs, mask)
    return attacks, inputs


def _write_outputs(
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
        from lira_jax.audit import plots

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


def done_model_arrays(run: dict[str, Any]) -> tuple[ExampleArray, ExampleArray | None, np.ndarray]:
    """A `load_run` result restricted to its done models, read lazily: (scores float32[M', N, V], logits
    float[M', N, V, C] or None, keep bool[M', N]), M' = len(run["models"]). Without scores (a folder of
    plain logits), φ is computed from the logits as the attacks read them."""
    models = run["models"]
    keep = run["keep"][models]
    logits = run["logits"]
    if len(models) != run["keep"].shape[0]:
        logits = None if logits is None else subset_models(logits, models)
    if run["scores"] is None:
        return streamed_phi(logits, run["labels"]), logits, keep
    scores = run["scores"] if len(models) == run["keep"].shape[0] else subset_models(run["scores"], models)
    return scores, logits, keep


def load_transfer(shadow_run: str | Path, run_dir: Path) -> TransferShadow:
    """ML-Leaks adversary 2's shadow: the first finished model of another run, with its logits."""
    shadow_run = Path(shadow_run)
    if shadow_run.is_dir() and shadow_run.resolve() == run_dir.resolve():
        raise UserError(f"--shadow-run must be another run folder (trained on another data set), not {run_dir}")
    try:
        other = load_run(shadow_run)
        if other["logits"] is not None:  # the other run's own consistency: its one check, as it is opened here
            check_logits(other["logits"], other["labels"], scores_shape(other))
    except UserError as error:
        raise UserError(f"--shadow-run {shadow_run} is not a usable run folder: {error}") from None
    if other["logits"] is None:
        raise UserError(f"--shadow-run {shadow_run} has no logits.npy, which the attack model is trained on")
    return TransferShadow(other["logits"], other["keep"], other["models"][0])


def masked_inputs(inputs: AttackInputs, mask: Mask) -> AttackInputs:
    """The inputs as the attacks see them under `mask`: φ from the masked logits, masked pseudo-logits (also
    the transfer shadow's); checked inputs stay checked, the mask being checked against their classes here."""
    check_mask(mask, inputs.logits.shape[3])
    scores, logits = masked_run(inputs.logits, inputs.labels, mask)
    transfer = inputs.transfer
    if transfer is not None:
        check_mask(mask, transfer.logits.shape[3])
        transfer = replace(transfer, logits=masked_logits(transfer.logits, mask))
    return replace(inputs, scores=scores, logits=logits, transfer=transfer)


def _attack_records(
    membership: np.ndarray, attack_scores: dict[str, np.ndarray], delta: float
) -> tuple[dict[str, Any], dict[str, Any], dict[str, float | None]]:
    """metrics.json's "attacks" for membership bool[T, N] and scores {name: float32[T, N]}, each attack's
    ROC sampled for the plot (`metrics.roc_plot_data`, with its metrics), and its threshold flagging
    examples (`per_example.flag_threshold`): all three from one exact ROC per attack."""
    per_attack, curves, thresholds = {}, {}, {}
    for name, values in attack_scores.items():
        if isinstance(values, NotApplicable):  # null metrics with the reason; not on the plot
            per_attack[name] = {
                "auc": None,
                "balanced_accuracy": None,
                "tpr_at_fpr": {str(alpha): None for alpha in FPR_LEVELS},
                "not_applicable": values.reason,
            }
            continue
        roc = roc_curve(membership, values)  # exact; [T·N] points at most, so kept one at a time
        per_attack[name] = attack_metrics(membership, None, roc=roc, delta=delta)
        if name in CLASSIFIERS:
            per_attack[name]["at_decision_threshold"] = {
                "member_probability_above": 0.5,
                **decision_metrics(membership, values > 0),
            }
        curves[name] = {**roc_plot_data(roc), **per_attack[name]}
        thresholds[name] = flag_threshold(roc)
        del roc  # before the next attack's ROC is built: two of them at once would double the peak memory
    return per_attack, curves, thresholds


def _settings(
    options: AttackOptions,
    delta: float,
    epoch: int | None,
    mask: Mask | None,
    attacks: Sequence[str],
    logits: ExampleArray | None,
) -> dict[str, Any]:
    """metrics.json's "options", and "epoch" and "mask" when the run was attacked as of an epoch or masked."""
    record: dict[str, Any] = {
        "options": {
            "lira_centre": options.lira_centre,
            "lira_counts": options.lira_counts,
            "rmia_a": options.rmia_a,
            "rmia_gamma": options.rmia_gamma,
            "delta": delta,
            "roc": "pooled over every (target, example) pair",
        }
    }
    if epoch is not None:
        record["epoch"] = epoch
    if mask is not None:
        record["mask"] = mask_record(mask, logits.shape[3], attacks)
    return record


def _classifiers_record(
    attacks: Sequence[str], num_targets: int, classifier_rows: int, shadow_run: str | Path | None
) -> dict[str, Any]:
    """metrics.json's "classifiers": how the attack classifiers were cross-fitted and sized."""
    return {
        "cross_fitting": "targets in model folds x examples in 2 halves; each attack model is trained on "
        "models outside its targets' fold and examples in the other half",
        "model_folds": min(MODEL_FOLDS, num_targets),
        "example_halves": 2,
        "max_rows": classifier_rows,
        "hidden_units": HIDDEN_UNITS,
        "top_probabilities": TOP_PROBABILITIES,
        "view": 0,
        "shadow_run": None if shadow_run is None else str(shadow_run),
        "ml_leaks_adversary_3": [name for name in ML_LEAKS_ADVERSARY_3 if name in attacks],
    }


def mask_record(mask: Mask, num_classes: int, attacks: Sequence[str]) -> dict[str, Any]:
    """metrics.json's "mask": the spec, the floor a reported 0 is read as, and what label-only leaves."""
    record = {"spec": mask.spec, "floor": mask.floor(num_classes)}
    if mask.kind == "label":
        record["left_out"] = [name for name in LABEL_BLIND if name not in attacks]
        record["note"] = (
            "label only: each query shows one bit, whether the model labels the example right; every attack "
            "below scores a function of that bit (correctness), and those reading only the sorted output are left out"
        )
    return record
