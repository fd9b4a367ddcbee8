"""`python -m lira_jax.attack RUN`: every attack on a run folder, scored per target, pooled into one ROC.

Reads keep.npy bool[M, N], labels.npy int[N], scores.npy float32[M, N, V] (and logits.npy
float16|float32[M, N, V, C] when present); if models.json is there, only models marked done are used.
With --epoch E, scores.npy and logits.npy come from the snapshot RUN/epochs/E/ instead. With --mask,
every attack reads the masked output (`lira_jax.audit.masking`): φ is recomputed from the masked logits.
Writes RUN/metrics.json (docs/run_folder.md) and RUN/roc.png (RUN/epochs/E/ with --epoch), and prints a table.
Every input is checked before anything is computed or written: a bad run folder is one line on stderr
and exit status 2.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from lira_jax.audit.baselines import (
    FROM_LOGITS,
    FROM_SCORES,
    baseline_scores,
    check_logits,
    correctness_rule,
    labelled_right,
    rmia,
)
from lira_jax.audit.classifiers import (
    CLASSIFIERS,
    HIDDEN_UNITS,
    MAX_ROWS,
    MODEL_FOLDS,
    TOP_PROBABILITIES,
    TransferShadow,
    classifier_scores,
)
from lira_jax.audit.masking import Mask, check_mask, mask_logits, parse_mask
from lira_jax.audit.metrics import attack_metrics, decision_metrics, roc_curve
from lira_jax.audit.report import format_table
from lira_jax.audit.scoring import LIRA_VARIANTS, lira_scores, logit_scale
from lira_jax.audit.streaming import ExampleArray, MappedExamples, subset_models
from lira_jax.errors import ArgumentParser, UserError, exits_cleanly

RMIA_ATTACKS = ("rmia_online", "rmia_offline")
ATTACKS = (*LIRA_VARIANTS, *RMIA_ATTACKS, *FROM_SCORES, *FROM_LOGITS, *CLASSIFIERS)
NEED_LOGITS = (*FROM_LOGITS, *CLASSIFIERS)
LABEL_BLIND = ("confidence", "entropy", *CLASSIFIERS)  # read only the sorted output: constant under --mask label
ML_LEAKS_ADVERSARY_3 = ("confidence", "entropy")  # thresholds on the maximum probability and on the entropy


def score_attacks(
    scores: ExampleArray,
    keep: np.ndarray,
    targets: Sequence[int] | None = None,
    attacks: Sequence[str] = ATTACKS,
    *,
    logits: ExampleArray | None = None,
    labels: np.ndarray | None = None,
    lira_centre: str = "median",
    rmia_a: float = 0.3,
    rmia_gamma: float = 1.0,
    population: np.ndarray | None = None,
    transfer: TransferShadow | None = None,
    classifier_rows: int = MAX_ROWS,
    workers: int | None = None,
) -> dict[str, np.ndarray]:
    """{attack: float32[T, N]} for the named attacks (see ATTACKS); scores float32[M, N, V], keep bool[M, N].

    LiRA variants share one pass over the scores; the others make one each. The attack classifiers
    (`lira_jax.audit.classifiers`, scores: member log-odds) need logits, ml_leaks_adv2 also `transfer`;
    classifier_rows bounds each attack model's training rows.
    """
    unknown = [name for name in attacks if name not in ATTACKS]
    if unknown:
        raise UserError(f"unknown attack(s) {', '.join(unknown)}; known: {', '.join(ATTACKS)}")
    results = {}
    lira = {name: replace(LIRA_VARIANTS[name], centre=lira_centre) for name in attacks if name in LIRA_VARIANTS}
    if lira:
        results.update(lira_scores(scores, keep, targets, lira, workers=workers))
    for name in (name for name in attacks if name in RMIA_ATTACKS):
        results[name] = rmia(
            scores,
            keep,
            targets,
            online=name == "rmia_online",
            a=rmia_a,
            gamma=rmia_gamma,
            population=population,
            workers=workers,
        )
    baselines = [name for name in attacks if name in FROM_SCORES + FROM_LOGITS]
    if baselines:
        results.update(baseline_scores(scores, keep, targets, baselines, logits=logits, labels=labels, workers=workers))
    classifiers = [name for name in attacks if name in CLASSIFIERS]
    if classifiers:
        if logits is None:
            raise UserError(f"{', '.join(classifiers)} need the full logits (logits.npy), which were not given")
        results.update(
            classifier_scores(
                logits,
                keep,
                labels,
                targets,
                classifiers,
                transfer=transfer,
                max_rows=classifier_rows,
                workers=workers,
            )
        )
    return {name: results[name] for name in attacks}


def _load_array(path: Path, required: bool = True, mmap: bool = True) -> np.ndarray | None:
    if not path.is_file():
        if required:
            raise UserError(f"{path} is missing")
        return None
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise UserError(f"cannot read {path}: {error}") from None


def _done_models(run_dir: Path, num_models: int) -> list[int]:
    """Indices of the models that may be used: those models.json marks done, or all if it is absent."""
    path = run_dir / "models.json"
    if not path.is_file():
        return list(range(num_models))
    try:
        records = json.loads(path.read_text())["models"]
        done = [record["done"] for record in records]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UserError(f'{path} is not a JSON object with a list "models" of records with "done": {error}') from None
    if len(done) != num_models or not all(isinstance(flag, bool) for flag in done):
        raise UserError(
            f"{path} must list {num_models} models (keep.npy has {num_models}), each with a boolean "
            f'"done"; it lists {len(done)}'
        )
    return [index for index, flag in enumerate(done) if flag]


def saved_epochs(run_dir: Path) -> list[int]:
    """The epochs E with a snapshot folder RUN/epochs/E/, in increasing order."""
    folder = run_dir / "epochs"
    if not folder.is_dir():
        return []
    return sorted(int(path.name) for path in folder.iterdir() if path.is_dir() and path.name.isdecimal())


def epoch_folder(run_dir: str | Path, epoch: int | None) -> Path:
    """Where the arrays of `epoch` lie: RUN itself (None: the final models) or RUN/epochs/E."""
    run_dir = Path(run_dir)
    if epoch is None:
        return run_dir
    saved = saved_epochs(run_dir)
    if epoch not in saved:
        listed = ", ".join(map(str, saved)) or "none (set query.save_epochs when training)"
        raise UserError(f"epoch {epoch} was not saved in {run_dir}; saved epochs: {listed}")
    return run_dir / "epochs" / str(epoch)


def load_run(run_dir: str | Path, epoch: int | None = None) -> dict[str, Any]:
    """Opens and checks a run folder: {keep, labels, scores, logits (or None), models: indices used}.

    epoch: read scores.npy and logits.npy of that snapshot (RUN/epochs/E/); keep, labels and
    models.json always come from RUN.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir} is not a directory")
    keep = _load_array(run_dir / "keep.npy", mmap=False)
    labels = _load_array(run_dir / "labels.npy", mmap=False)
    arrays = epoch_folder(run_dir, epoch)
    scores = _load_array(arrays / "scores.npy")
    logits = _load_array(arrays / "logits.npy", required=False)
    if keep.dtype != bool or keep.ndim != 2:
        raise UserError(f"keep.npy must be bool [M, N], got {keep.dtype}{list(keep.shape)}")
    num_models, num_examples = keep.shape
    if labels.dtype.kind not in "iu" or labels.shape != (num_examples,):
        raise UserError(f"labels.npy must be integers [N] = [{num_examples}], got {labels.dtype}{list(labels.shape)}")
    if scores.dtype != np.float32 or scores.ndim != 3 or scores.shape[:2] != keep.shape or scores.shape[2] < 1:
        raise UserError(
            f"scores.npy must be float32 [M, N, V] with [M, N] = {list(keep.shape)} from keep.npy, "
            f"got {scores.dtype}{list(scores.shape)}"
        )
    if logits is not None:
        if logits.dtype not in (np.float16, np.float32):
            raise UserError(f"logits.npy must be float16 or float32, got {logits.dtype}")
        check_logits(logits, labels, scores.shape)
    models = _done_models(run_dir, num_models)
    if len(models) < 2:
        raise UserError(
            f"at least 2 finished models are needed (one target, one shadow); {run_dir} has "
            f"{len(models)} of {num_models} done"
        )
    return {"keep": keep, "labels": labels, "scores": scores, "logits": logits, "models": models}


def parse_targets(spec: str, models: Sequence[int]) -> list[int]:
    """Model indices from `last`, `all`, `I,J,...` or `A:B` (B excluded); each must be a usable model."""
    spec = spec.strip()
    if spec == "all":
        return list(models)
    if spec == "last":
        return [models[-1]]
    try:
        if ":" in spec:
            start, _, stop = spec.partition(":")
            chosen = list(range(int(start) if start else 0, int(stop) if stop else max(models) + 1))
        else:
            chosen = [int(part) for part in spec.split(",")]
    except ValueError:
        raise UserError(f"--targets must be last, all, I,J,... or A:B, got {spec!r}") from None
    missing = sorted(set(chosen) - set(models))
    if not chosen or missing or len(set(chosen)) != len(chosen):
        raise UserError(
            f"--targets {spec!r} must name distinct finished models (done: {len(models)}); not usable: {missing[:10]}"
        )
    return chosen


def choose_attacks(
    attacks: Sequence[str] | None, run_dir: Path, has_logits: bool, mask: Mask | None, has_transfer: bool
) -> list[str]:
    """The attacks to run: those asked for, checked, or by default every one the run folder allows."""
    left_out = set(LABEL_BLIND) if mask is not None and mask.kind == "label" else set()
    if attacks is None:
        return [
            name
            for name in ATTACKS
            if (has_logits or name not in NEED_LOGITS)
            and (has_transfer or name != "ml_leaks_adv2")
            and name not in left_out
        ]
    if not has_logits and any(name in NEED_LOGITS for name in attacks):
        wanted = [name for name in attacks if name in NEED_LOGITS]
        raise UserError(f"{', '.join(wanted)} need logits, but {run_dir} has no logits.npy")
    if "ml_leaks_adv2" in attacks and not has_transfer:
        raise UserError("ml_leaks_adv2 (data transfer) needs --shadow-run OTHER, a run trained on another data set")
    blind = [name for name in attacks if name in left_out]
    if blind:
        raise UserError(
            f"under --mask label every output is a one-hot vector, so {', '.join(blind)} would score every "
            "example the same: nothing to attack; leave them out"
        )
    return list(attacks)


def _apply_mask(logits: ExampleArray, labels: np.ndarray, scores_shape: tuple, mask: Mask) -> tuple[Any, Any]:
    """(φ float32[M, N, V], pseudo-logits float64[M, N, V, C]) of the masked output, computed as read."""
    masked = MappedExamples(logits, lambda chunk, start, stop: mask_logits(chunk, mask), logits.shape, np.float64)
    phi = MappedExamples(
        masked, lambda chunk, start, stop: logit_scale(chunk, labels[start:stop]), scores_shape, np.float32
    )
    return phi, masked


def _load_transfer(shadow_run: str | Path, run_dir: Path, mask: Mask | None) -> TransferShadow:
    """ML-Leaks adversary 2's shadow: the first finished model of another run, with its logits (masked too)."""
    shadow_run = Path(shadow_run)
    if shadow_run.is_dir() and shadow_run.resolve() == run_dir.resolve():
        raise UserError(f"--shadow-run must be another run folder (trained on another data set), not {run_dir}")
    try:
        other = load_run(shadow_run)
    except UserError as error:
        raise UserError(f"--shadow-run {shadow_run} is not a usable run folder: {error}") from None
    logits = other["logits"]
    if logits is None:
        raise UserError(f"--shadow-run {shadow_run} has no logits.npy, which the attack model is trained on")
    if mask is not None:
        check_mask(mask, logits.shape[3])
        logits = MappedExamples(logits, lambda chunk, start, stop: mask_logits(chunk, mask), logits.shape, np.float64)
    return TransferShadow(logits, other["keep"], other["models"][0])


def run_attack(
    run_dir: str | Path,
    targets: str = "all",
    json_path: str | Path | None = None,
    plot_path: str | Path | None = None,
    *,
    attacks: Sequence[str] | None = None,
    lira_centre: str = "median",
    rmia_a: float = 0.3,
    delta: float = 1e-5,
    distributions_path: str | Path | None = None,
    examples: Sequence[int] | None = None,
    mask: str | None = None,
    epoch: int | None = None,
    shadow_run: str | Path | None = None,
    classifier_rows: int = MAX_ROWS,
    print_table: bool = True,
) -> dict[str, Any]:
    """Scores every attack on a run folder, writes metrics.json and roc.png (by default into it, or into
    RUN/epochs/E/ with epoch E), returns the metrics dict and prints the table. Defaults: every attack the
    folder allows (those on logits only with logits.npy, ml_leaks_adv2 only with shadow_run); targets
    "all" (every model against all the others, ROC pooled). mask: `top:K`, `round:D` or `label`
    (`lira_jax.audit.masking`), applied to the logits before any attack."""
    started = time.perf_counter()
    run_dir = Path(run_dir)
    parsed_mask = None if mask is None else parse_mask(mask)
    run = load_run(run_dir, epoch)
    out_dir = epoch_folder(run_dir, epoch)
    json_path = Path(json_path) if json_path else out_dir / "metrics.json"
    plot_path = Path(plot_path) if plot_path else out_dir / "roc.png"
    for path in (json_path, plot_path, *([Path(distributions_path)] if distributions_path else [])):
        if not path.parent.is_dir():
            raise UserError(f"cannot write {path}: {path.parent} is not a directory")
    models = run["models"]
    target_ids = parse_targets(targets, models)
    if parsed_mask is not None:
        if run["logits"] is None:
            raise UserError(f"--mask {mask} masks the logits, but {out_dir} has no logits.npy")
        check_mask(parsed_mask, run["logits"].shape[3])
    transfer = None if shadow_run is None else _load_transfer(shadow_run, run_dir, parsed_mask)
    attacks = choose_attacks(attacks, run_dir, run["logits"] is not None, parsed_mask, transfer is not None)
    use_all = len(models) == run["keep"].shape[0]
    scores = run["scores"] if use_all else subset_models(run["scores"], models)
    logits = run["logits"] if use_all or run["logits"] is None else subset_models(run["logits"], models)
    if parsed_mask is not None:
        scores, logits = _apply_mask(logits, run["labels"], scores.shape, parsed_mask)
    keep = run["keep"][models]
    positions = [models.index(target) for target in target_ids]
    attack_scores = score_attacks(
        scores,
        keep,
        positions,
        attacks,
        logits=logits,
        labels=run["labels"],
        lira_centre=lira_centre,
        rmia_a=rmia_a,
        transfer=transfer,
        classifier_rows=classifier_rows,
    )

    from lira_jax import plots  # matplotlib only once the scores are in

    membership = keep[positions]
    per_attack, curves = {}, {}
    for name, values in attack_scores.items():
        roc = roc_curve(membership, values)  # exact; [T·N] points at most, so kept one at a time
        per_attack[name] = attack_metrics(membership, None, roc=roc, delta=delta)
        if name in CLASSIFIERS:
            per_attack[name]["at_decision_threshold"] = {
                "member_probability_above": 0.5,
                **decision_metrics(membership, values > 0),
            }
        curves[name] = {**plots.roc_plot_data(roc), **per_attack[name]}
    metrics = {
        "num_models": len(models),
        "num_examples": int(keep.shape[1]),
        "num_views": int(scores.shape[2]),
        "targets": target_ids,
        "attacks": per_attack,
        "options": {
            "lira_centre": lira_centre,
            "rmia_a": rmia_a,
            "rmia_gamma": 1.0,
            "delta": delta,
            "roc": "pooled over every (target, example) pair",
        },
    }
    if epoch is not None:
        metrics["epoch"] = epoch
    if parsed_mask is not None:
        metrics["mask"] = _mask_record(parsed_mask, logits.shape[3], attacks)
    if logits is not None:
        metrics["correctness_rule"] = {
            "view": 0,
            **correctness_rule(membership, labelled_right(logits, run["labels"], positions)),
        }
    if any(name in CLASSIFIERS for name in attacks):
        metrics["classifiers"] = {
            "cross_fitting": "targets in model folds x examples in 2 halves; each attack model is trained on "
            "models outside its targets' fold and examples in the other half",
            "model_folds": min(MODEL_FOLDS, len(positions)),
            "example_halves": 2,
            "max_rows": classifier_rows,
            "hidden_units": HIDDEN_UNITS,
            "top_probabilities": TOP_PROBABILITIES,
            "view": 0,
            "shadow_run": None if shadow_run is None else str(shadow_run),
            "ml_leaks_adversary_3": [name for name in ML_LEAKS_ADVERSARY_3 if name in attacks],
        }
    metrics["seconds"] = round(time.perf_counter() - started, 3)
    if not use_all:
        metrics["models"] = models
    distributions = None
    if distributions_path:
        distributions = examples if examples is not None else _most_exposed(attack_scores, membership)
        if not distributions or min(distributions) < 0 or max(distributions) >= keep.shape[1]:
            raise UserError(f"--examples must lie in [0, {keep.shape[1]}), got {distributions}")

    from lira_jax.store import write_atomically

    title = f"{run_dir.name}: {len(target_ids)} target(s), {len(models)} models"
    title += "".join([f", epoch {epoch}" if epoch is not None else "", f", mask {mask}" if mask else ""])
    plots.plot_roc(curves, plot_path, title=title)
    if distributions is not None:
        plots.plot_score_distributions(scores, keep, distributions, distributions_path, target=positions[0])
    write_atomically(json_path, json.dumps(metrics, indent=1) + "\n")
    for path in (json_path, plot_path, *([Path(distributions_path)] if distributions is not None else [])):
        path.chmod(0o644)  # temporary files are created private
    if print_table:
        print(format_table(metrics))
    return metrics


def _mask_record(mask: Mask, num_classes: int, attacks: Sequence[str]) -> dict[str, Any]:
    """metrics.json's "mask": the spec, the floor a reported 0 is read as, and what label-only leaves."""
    record = {"spec": mask.spec, "floor": mask.floor(num_classes)}
    if mask.kind == "label":
        record["left_out"] = [name for name in LABEL_BLIND if name not in attacks]
        record["note"] = (
            "label only: each query shows one bit, whether the model labels the example right; every attack "
            "below scores a function of that bit (correctness), and those reading only the sorted output are left out"
        )
    return record


def _most_exposed(attack_scores: dict[str, np.ndarray], membership: np.ndarray, count: int = 4) -> list[int]:
    """The members of the first target that the first attack scores highest."""
    first = next(iter(attack_scores.values()))[0]
    order = np.argsort(-np.where(membership[0], first, -np.inf), kind="stable")
    return [int(n) for n in order[:count]]


def parse_integers(text: str | None, option: str) -> list[int] | None:
    """A command-line list "I,J,..." as integers (None stays None); anything else is a UserError naming `option`."""
    if text is None:
        return None
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise UserError(f"{option} must be I,J,..., got {text!r}") from None


@exits_cleanly
def main(argv: Sequence[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m lira_jax.attack", description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="run folder with keep.npy, labels.npy, scores.npy")
    parser.add_argument("--targets", default="all", help="last, all, I,J,... or A:B (default: all)")
    parser.add_argument("--json", type=Path, help="where to write metrics (default: RUN/metrics.json)")
    parser.add_argument("--plot", type=Path, help="where to draw the ROC (default: RUN/roc.png)")
    parser.add_argument(
        "--attacks", help=f"comma-separated subset of: {', '.join(ATTACKS)} (default: all that the folder allows)"
    )
    parser.add_argument("--lira-centre", choices=("median", "mean"), default="median")
    parser.add_argument("--rmia-a", type=float, default=0.3, help="offline RMIA's a (default 0.3)")
    parser.add_argument("--delta", type=float, default=1e-5, help="δ of the ε lower bound (default 1e-5)")
    parser.add_argument("--distributions", type=Path, help="also draw IN/OUT score histograms to this PNG")
    parser.add_argument("--examples", help="examples for --distributions, I,J,... (default: 4 most exposed)")
    parser.add_argument("--mask", help="mask the output before every attack: top:K, round:D or label")
    parser.add_argument("--epoch", type=int, help="attack the snapshot RUN/epochs/E (writes there by default)")
    parser.add_argument("--shadow-run", type=Path, help="ML-Leaks adversary 2: a run on another data set")
    parser.add_argument(
        "--classifier-rows", type=int, default=MAX_ROWS, help=f"training rows per attack model (default {MAX_ROWS})"
    )
    args = parser.parse_args(argv)
    attacks = None if args.attacks is None else [name.strip() for name in args.attacks.split(",") if name.strip()]
    if attacks is not None and (not attacks or any(name not in ATTACKS for name in attacks)):
        raise UserError(f"--attacks takes names from: {', '.join(ATTACKS)}; got {args.attacks!r}")
    run_attack(
        args.run,
        args.targets,
        args.json,
        args.plot,
        attacks=attacks,
        lira_centre=args.lira_centre,
        rmia_a=args.rmia_a,
        delta=args.delta,
        distributions_path=args.distributions,
        examples=parse_integers(args.examples, "--examples"),
        mask=args.mask,
        epoch=args.epoch,
        shadow_run=args.shadow_run,
        classifier_rows=args.classifier_rows,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
