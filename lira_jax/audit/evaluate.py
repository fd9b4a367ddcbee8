"""Attacking a run folder, the one conductor: inputs -> scores -> ROC -> outputs.

`attack_folder` reads keep.npy bool[M, N], labels.npy int[N], scores.npy float32[M, N, V] (and logits.npy
float16|float32[M, N, V, C] when present) through `lira_jax.store.load_run`; only models that models.json
marks done are used. A folder of plain logits needs no scores.npy: φ is computed as the attacks read the
logits, and never written. The LiRA reference code's experiment folders are read by
`lira_jax.audit.inputs.readers`. With an epoch E, scores.npy and logits.npy come from the snapshot RUN/epochs/E/.
With a mask, every attack reads the masked output (`lira_jax.audit.inputs.masking`): φ is recomputed from the
masked logits. A run's canaries (RUN/canaries.json, `lira_jax.audit.inputs.canaries`) are left out: every attack,
RMIA's population included, reads the ordinary examples only. Every input is checked before anything is
computed or written (`registry.check_inputs`). The metrics.json format is in docs/run_folder.md.

The rooms it conducts: `lira_jax.audit.inputs` (what is read, checked once), `lira_jax.audit.attacks` (the
scores, through `lira_jax.audit.registry`), `lira_jax.audit.metrics` (the ROC) and `lira_jax.audit.report`
(the records, the table and the files).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lira_jax.audit.attacks.baselines import correctness_rule, top_class_is_label
from lira_jax.audit.attacks.classifiers import CLASSIFIERS, MAX_ROWS
from lira_jax.audit.inputs.canaries import read_canaries, without_canaries
from lira_jax.audit.inputs.checked import COUNTS, EQUALISED, AttackInputs, AttackOptions
from lira_jax.audit.inputs.masking import Mask, masked_inputs, parse_mask
from lira_jax.audit.inputs.sources import (
    done_model_arrays,
    inputs_record,
    load_transfer,
    open_source,
    protected_inputs,
    read_lines,
)
from lira_jax.audit.inputs.target_model import with_target_model
from lira_jax.audit.inputs.targets import parse_targets
from lira_jax.audit.registry import LABEL_BLIND, check_inputs, choose_attacks, score_checked
from lira_jax.audit.report.per_example import example_table, most_exposed
from lira_jax.audit.report.records import attack_records, classifiers_record
from lira_jax.audit.report.result import BESIDE_JSON, Audit, write_outputs
from lira_jax.audit.streaming import ExampleArray
from lira_jax.errors import UserError
from lira_jax.outputs import check_figure_path, invocation_id, refuse_outputs
from lira_jax.store import epoch_folder
from lira_jax.writing import output_set


@dataclass(frozen=True)
class AttackRun:
    """What `python -m lira_jax.attack RUN` is asked: targets ("all", "last", "I,J,..." or "A:B"; None: all);
    where metrics.json and roc.png go (None: into RUN, RUN/epochs/E with epoch E, or the target model's
    folder); the attacks (None: every
    one the folder allows: those on logits only with logits.npy, ml_leaks_adv2 only with shadow_run);
    LiRA's centre and counts, offline RMIA's a, the δ of the ε lower bound; the score distributions'
    figure and its examples (None: the 4 most exposed); mask (`top:K`, `round:D` or `label`,
    `lira_jax.audit.inputs.masking`), applied to the logits before any attack; the epoch snapshot; ML-Leaks
    adversary 2's other run; the attack classifiers' training rows; whether to print the table; source
    ("run": our run folder or a folder of plain logits; "lira-reference": `lira_jax.audit.inputs.readers`,
    with labels_path their labels); top: how many most exposed examples to print; target_model: a folder
    with one model trained elsewhere (`lira_jax.audit.inputs.target_model`), the only target, every model
    of RUN its shadow."""

    targets: str | None = None
    json_path: str | Path | None = None
    plot_path: str | Path | None = None
    attacks: Sequence[str] | None = None
    lira_centre: str = "median"
    lira_counts: str = EQUALISED
    rmia_a: float = 0.3
    delta: float = 1e-5
    distributions_path: str | Path | None = None
    examples: Sequence[int] | None = None
    mask: str | None = None
    epoch: int | None = None
    shadow_run: str | Path | None = None
    classifier_rows: int = MAX_ROWS
    print_table: bool = True
    source: str = "run"
    labels_path: str | Path | None = None
    top: int = 0
    target_model: str | Path | None = None


def run_attack(
    run_dir: str | Path,
    targets: str | None = None,
    json_path: str | Path | None = None,
    plot_path: str | Path | None = None,
    **options: Any,
) -> dict[str, Any]:
    """`attack_folder(run_dir, AttackRun(targets, json_path, plot_path, **options))`: the keyword form."""
    return attack_folder(run_dir, AttackRun(targets, json_path, plot_path, **options))


def attack_folder(run_dir: str | Path, asked: AttackRun) -> dict[str, Any]:
    """Scores every attack on a run folder and writes metrics.json and roc.png (by default into it, or into
    RUN/epochs/E/ with epoch E), with examples.csv, metrics.csv and report.html beside metrics.json; returns
    the metrics dict and prints the table (and the `top` most exposed examples)."""
    started = time.perf_counter()
    run_dir = Path(run_dir)
    if not (math.isfinite(asked.delta) and 0 < asked.delta < 1):
        raise UserError(f"--delta must be a finite number in (0, 1), got {asked.delta}")
    if asked.lira_counts not in COUNTS:
        raise UserError(f"--lira-counts must be one of {', '.join(COUNTS)}, got {asked.lira_counts!r}")
    mask = None if asked.mask is None else parse_mask(asked.mask)
    run = open_source(run_dir, asked.epoch, asked.source, asked.labels_path)
    out_dir = epoch_folder(run_dir, asked.epoch)
    if asked.target_model is not None:
        if asked.targets is not None:
            raise UserError("--targets chooses among RUN's models; with --target-model the target is that model")
        run = with_target_model(run, asked.target_model)
        out_dir = Path(asked.target_model)
    canaries = read_canaries(run_dir, run["keep"].shape[1]) if asked.source == "run" else None
    if canaries is not None:
        run = without_canaries(run, canaries)  # the ordinary attack table is about the ordinary examples only
    json_path = Path(asked.json_path) if asked.json_path else out_dir / "metrics.json"
    plot_path = Path(asked.plot_path) if asked.plot_path else out_dir / "roc.png"
    beside = json_path.parent  # examples.csv, metrics.csv and report.html go beside metrics.json
    outputs = {"--json": json_path, "--plot": plot_path, "--distributions": asked.distributions_path}
    outputs.update({f"output {name}": beside / name for name in BESIDE_JSON})
    refuse_outputs(outputs, protected_inputs(run, run_dir, asked.source, asked.shadow_run))
    for option in ("--plot", "--distributions"):
        if outputs[option] is not None:
            check_figure_path(outputs[option], option)
    targets = "all" if asked.targets is None else asked.targets
    target_ids = parse_targets("last" if asked.target_model is not None else targets, run["models"])
    if mask is not None and run["logits"] is None:
        raise UserError(f"--mask {asked.mask} masks the logits, but {out_dir} has no logits.npy")
    options = AttackOptions(
        lira_centre=asked.lira_centre,
        lira_counts=asked.lira_counts,
        rmia_a=asked.rmia_a,
        classifier_rows=asked.classifier_rows,
    )
    attacks, inputs = _run_inputs(run, run_dir, target_ids, mask, asked.shadow_run, asked.attacks, options)
    num_examples = inputs.keep.shape[1]
    examples = asked.examples
    if (
        asked.distributions_path
        and examples is not None
        and not (examples and 0 <= min(examples) <= max(examples) < num_examples)
    ):
        raise UserError(f"--examples must lie in [0, {num_examples}), got {list(examples)}")
    title = f"{run_dir.name}: {len(target_ids)} target(s), {len(run['models'])} models"
    title += "".join(
        [f", epoch {asked.epoch}" if asked.epoch is not None else "", f", mask {asked.mask}" if mask else ""]
    )
    audit = evaluate_inputs(
        inputs,
        attacks,
        target_ids,
        delta=asked.delta,
        epoch=asked.epoch,
        mask=mask,
        shadow_run=asked.shadow_run,
        title=title,
        quiet=not asked.print_table,
    )
    metrics = audit.metrics
    metrics["inputs"] = inputs_record(run, asked.shadow_run)
    if canaries is not None:
        metrics["canaries_excluded"] = canaries.count
    metrics["seconds"] = round(time.perf_counter() - started, 3)
    if len(run["models"]) != run["keep"].shape[0]:
        metrics["models"] = run["models"]
    distributions = None
    if asked.distributions_path:
        distributions = examples if examples is not None else most_exposed(audit.examples, audit.ranking_attack(), 4)
    with output_set():  # all or nothing: moved into place together once every file is written
        written = write_outputs(audit, json_path, plot_path, inputs, distributions, asked.distributions_path, run)
    if asked.print_table:
        print(audit.table())
        print("\n".join(read_lines(metrics["inputs"], metrics["invocation"])))
        if canaries is not None:
            print(f"{canaries.count} canaries left out ({canaries.path.name})")
        if asked.top:
            print("\n" + "\n".join(audit.top_lines(asked.top)))
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
    per_attack, curves, thresholds = attack_records(membership, attack_scores, delta)
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
        metrics["classifiers"] = classifiers_record(attacks, len(target_ids), classifier_rows, shadow_run)
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
