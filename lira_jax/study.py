"""`python -m lira_jax.study NAME RUN ... [--out DIR]`: four studies on trained run folders.

    defences RUN1 RUN2 ...   one row per run (one defence each): train and test accuracy, their gap, ε if the
                             run records one, AUC and TPR at 0.1% FPR (with its interval) of every attack
    gap RUN [RUN ...]        per target model: LiRA online's TPR at 0.1% FPR against its accuracy and loss gaps
                             (several runs: their targets pooled, each scored against its own run's models)
    shadows RUN              LiRA with 1, 2, 4, ..., M−1 shadow models per target
    violins RUN              φ of members and non-members, split by correct and wrong predictions, and every
                             attack on all examples against on correctly classified examples only

Each writes DIR/NAME.md (the table it prints), DIR/NAME.json and DIR/NAME.png. DIR defaults to
RUN/study-NAME, and for several runs to study-NAME in their common parent folder. Every input is
checked before anything is computed or written: bad input is one line on stderr and exit status 2.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from lira_jax import config as config_lib
from lira_jax.attack import choose_attacks, load_run, parse_integers, parse_targets, score_attacks
from lira_jax.audit.metrics import attack_metrics, points_at_fpr, roc_curve
from lira_jax.audit.scoring import lira_scores
from lira_jax.audit.streaming import ModelSubset, map_example_chunks, read_examples, subset_models
from lira_jax.config import Config
from lira_jax.errors import ArgumentParser, UserError, exits_cleanly
from lira_jax.store import MODELS_FILE, write_atomically

LOW_FPR = "0.001"  # the FPR every study reports TPR at (0.1%)
LOWEST_FPR = "1e-05"
ONLINE_VARIANTS = ("lira_online", "lira_online_fixed_var")
OFFLINE_VARIANTS = ("lira_offline", "lira_offline_fixed_var")


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


def open_run(path: str | Path) -> Run:
    """Opens and checks a run folder (`attack.load_run`), with its records and config when it has them."""
    path = Path(path)
    loaded = load_run(path)
    models = loaded["models"]
    use_all = len(models) == loaded["keep"].shape[0]
    records = None
    if (path / MODELS_FILE).is_file():
        all_records = json.loads((path / MODELS_FILE).read_text())["models"]  # load_run has checked it
        records = [all_records[model] for model in models]
    config = config_lib.load(path / "config.toml") if (path / "config.toml").is_file() else None
    logits = loaded["logits"]
    return Run(
        path=path,
        keep=loaded["keep"][models],
        labels=loaded["labels"],
        scores=loaded["scores"] if use_all else subset_models(loaded["scores"], models),
        logits=logits if use_all or logits is None else subset_models(logits, models),
        models=models,
        records=records,
        config=config,
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
# Formatting


def percent(value: float | None, interval: Sequence[float] | None = None) -> str:
    if value is None:
        return "n/m"
    text = f"{value:.2%}"
    return text if interval is None else f"{text} [{interval[0]:.2%}, {interval[1]:.2%}]"


def number(value: float | None, digits: int = 3) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def tpr_cell(metrics: dict[str, Any] | None, level: str = LOW_FPR) -> str:
    """TPR at FPR `level` with its Clopper-Pearson interval, from an `attack_metrics` dict."""
    point = metrics["at_fpr"][level] if metrics else None
    return "–" if metrics is None else percent(point and point["tpr"], point and point["tpr_interval"])


def finite_or_none(value: float) -> float | None:
    return None if not math.isfinite(value) else float(value)


# ---------------------------------------------------------------------------------------------------
# (a) defences


def _flat_config(config: Config) -> dict[str, Any]:
    identity = config_lib.identity(config)
    return {f"{section}.{key}": value for section, values in identity.items() for key, value in values.items()}


def _check_same_data(runs: Sequence[Run]) -> None:
    first = runs[0]
    for run in runs[1:]:
        data = [r.config.data for r in (first, run) if r.config is not None]
        if (len(data) == 2 and data[0] != data[1]) or not np.array_equal(run.labels, first.labels):
            raise UserError(
                f"{run.path} holds a different data set than {first.path} (data config or labels.npy differ): "
                "a defence table compares runs on the same examples"
            )


def defence_label(run: Run, first: Run) -> str:
    """The config keys in which `run` differs from the first run, else the folder's name."""
    if run is first or run.config is None or first.config is None:
        return run.path.name
    ours, theirs = _flat_config(run.config), _flat_config(first.config)
    differ = [f"{key}={json.dumps(value)}" for key, value in ours.items() if theirs.get(key) != value]
    return ", ".join(differ) or run.path.name


def _epsilon(run: Run) -> str | None:
    values = sorted({record["dp_epsilon"] for record in run.records or [] if record.get("dp_epsilon") is not None})
    if not values:
        return None
    return f"{values[0]:.3g}" if len(values) == 1 else f"{values[0]:.3g}–{values[-1]:.3g}"


def study_defences(runs: Sequence[Run], options: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """One row per run; every attack pooled over all targets, as `python -m lira_jax.attack RUN` scores it."""
    _check_same_data(runs)
    accuracies = [run.accuracies() for run in runs]
    rows = []
    for run, (train, test) in zip(runs, accuracies, strict=True):
        attack_scores = score_attacks(
            run.scores, run.keep, None, run.default_attacks(), logits=run.logits, labels=run.labels
        )
        rows.append(
            {
                "run": str(run.path),
                "label": defence_label(run, runs[0]),
                "epsilon": _epsilon(run),
                "num_models": len(run.models),
                "train_accuracy": float(train.mean()),
                "test_accuracy": float(test.mean()),
                "gap": float((train - test).mean()),
                "attacks": {name: attack_metrics(run.keep, values) for name, values in attack_scores.items()},
            }
        )
    attacks = list(dict.fromkeys(name for row in rows for name in row["attacks"]))
    show_epsilon = any(row["epsilon"] for row in rows)
    header = ["run", *(["ε"] if show_epsilon else []), "models", "train acc", "test acc", "gap"]
    summary = [
        [
            row["label"],
            *([row["epsilon"] or "∞ (no DP)"] if show_epsilon else []),
            row["num_models"],
            number(row["train_accuracy"]),
            number(row["test_accuracy"]),
            number(row["gap"]),
        ]
        for row in rows
    ]
    names = [f"({index + 1})" for index in range(len(rows))]
    legend = ", ".join(f"{name} {row['label']}" for name, row in zip(names, rows, strict=True))
    tprs = [[name, *(tpr_cell(row["attacks"].get(name)) for row in rows)] for name in attacks]
    aucs = [
        [name, *(number(row["attacks"][name]["auc"]) if name in row["attacks"] else "–" for row in rows)]
        for name in attacks
    ]
    nonmembers = rows[0]["attacks"][attacks[0]]["num_nonmembers"]
    text = "\n\n".join(
        [
            markdown_table(["", *header], [[name, *row] for name, row in zip(names, summary, strict=True)]),
            f"TPR at 0.1% FPR [95% Clopper-Pearson interval], ROC pooled over every target "
            f"({nonmembers:,} non-members in {names[0]}): {legend}",
            markdown_table(["attack", *names], tprs),
            "AUC",
            markdown_table(["attack", *names], aucs),
        ]
    )
    return text, {"runs": rows}, {"rows": rows, "names": names}


# ---------------------------------------------------------------------------------------------------
# (b) generalisation gap


def per_target_tpr(membership: np.ndarray, values: np.ndarray, alpha: float) -> tuple[float, float]:
    """(TPR at FPR <= alpha, AUC) of one target's own ROC over its examples (bool[N], float[N]).

    Unlike `metrics.tpr_at_fpr` this is given even where alpha < 1 / non-members: it is then the TPR at
    zero false positives, which the table says next to the number of non-members.
    """
    roc = roc_curve(membership, values)
    return float(roc.tpr[points_at_fpr(roc, alpha)]), float(attack_metrics(None, None, roc=roc)["auc"])


def _correlation(x: np.ndarray, y: np.ndarray) -> dict[str, float | None]:
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return {"pearson": None, "pearson_p": None, "spearman": None, "spearman_p": None}
    pearson, spearman = stats.pearsonr(x, y), stats.spearmanr(x, y)
    return {
        "pearson": finite_or_none(pearson.statistic),
        "pearson_p": finite_or_none(pearson.pvalue),
        "spearman": finite_or_none(spearman.statistic),
        "spearman_p": finite_or_none(spearman.pvalue),
    }


HYPERPARAMETERS = ("learning_rate", "weight_decay", "label_smoothing", "epochs", "augment_strength")


def _gap_points(run: Run, options: dict[str, Any]) -> list[dict[str, Any]]:
    """One point per target model of `run`, scored against the run's other models."""
    train, test = run.accuracies()
    positions = run.targets(options["targets"])
    phi, _ = identity_view_arrays(run, correctness=False)
    loss = np.logaddexp(0.0, -phi.astype(np.float64))  # cross-entropy −log σ(φ) = −log p_y
    online = lira_scores(run.scores, run.keep, positions, ["lira_online"])["lira_online"]
    points = []
    for row, position in enumerate(positions):
        members = run.keep[position]
        tpr, auc = per_target_tpr(members, online[row], float(LOW_FPR))
        record = run.records[position] if run.records else {}
        points.append(
            {
                "run": str(run.path),
                "model": run.models[position],
                "tpr_at_0.1%_fpr": tpr,
                "auc": auc,
                "train_accuracy": float(train[position]),
                "test_accuracy": float(test[position]),
                "accuracy_gap": float(train[position] - test[position]),
                "loss_gap": float(loss[position][~members].mean() - loss[position][members].mean()),
                "members": int(members.sum()),
                "nonmembers": int((~members).sum()),
                **{
                    name: record["hyperparameters"][name]
                    for name in HYPERPARAMETERS
                    if name in record.get("hyperparameters", {})
                },
            }
        )
    return points


def study_gap(runs: Sequence[Run], options: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Per target: LiRA online's TPR at 0.1% FPR (and AUC) on its own examples against its accuracy and loss gaps.

    Several runs (say, one per defence) pool their targets; each is scored within its own run.
    """
    alpha = float(LOW_FPR)
    points = [point for run in runs for point in _gap_points(run, options)]
    column = {
        key: np.array([point[key] for point in points])
        for key in ("tpr_at_0.1%_fpr", "auc", "accuracy_gap", "loss_gap")
    }
    correlations = {
        f"{y} vs {x}": _correlation(column[x], column[y])
        for y in ("tpr_at_0.1%_fpr", "auc")
        for x in ("accuracy_gap", "loss_gap")
    }
    nonmembers = [point["nonmembers"] for point in points]
    false_positives = math.floor(alpha * min(nonmembers))
    resolution = (
        f"{len(points)} targets, {min(nonmembers):,}–{max(nonmembers):,} non-members each: TPR at 0.1% FPR "
        f"per target allows {false_positives} false positive(s)"
        + (" (it is the TPR at zero false positives, a coarse measure)" if false_positives == 0 else "")
    )
    spread = [
        [
            name,
            number(float(column[key].min()), 4),
            number(float(np.median(column[key])), 4),
            number(float(column[key].max()), 4),
        ]
        for name, key in (
            ("LiRA online TPR at 0.1% FPR", "tpr_at_0.1%_fpr"),
            ("LiRA online AUC", "auc"),
            ("train − test accuracy", "accuracy_gap"),
            ("test − train loss", "loss_gap"),
        )
    ]
    table = [
        [
            name,
            number(value["pearson"]),
            number(value["pearson_p"], 4),
            number(value["spearman"]),
            number(value["spearman_p"], 4),
        ]
        for name, value in correlations.items()
    ]
    text = "\n\n".join(
        [
            resolution,
            markdown_table(["per target", "min", "median", "max"], spread),
            markdown_table(["correlation", "Pearson r", "p", "Spearman ρ", "p"], table),
        ]
    )
    data = {"fpr": alpha, "targets": points, "correlations": correlations, "resolution": resolution}
    return text, data, {"points": points, "correlations": correlations}


# ---------------------------------------------------------------------------------------------------
# (c) shadow count


def shadow_counts(num_models: int, requested: Sequence[int] | None) -> list[int]:
    """1, 2, 4, ... below M − 1, then M − 1 (every other model); or the requested counts, checked."""
    if num_models < 3:
        raise UserError(f"the shadow-count study needs at least 3 finished models, got {num_models}")
    if requested is None:
        return sorted({*(2**power for power in range(int(math.log2(num_models - 1)) + 1)), num_models - 1})
    if any(not 1 <= count <= num_models - 1 for count in requested):
        raise UserError(
            f"--counts must lie in [1, {num_models - 1}] (a target has {num_models - 1} other models), "
            f"got {list(requested)}"
        )
    return sorted(set(requested))


def _shadow_subset(run: Run, position: int, count: int, seed: int) -> tuple[np.ndarray, int]:
    """Model positions of target `position` and `count` random others (sorted), and the target's place among them."""
    others = np.delete(np.arange(run.keep.shape[0]), position)
    chosen = np.random.default_rng([seed, count, position]).choice(others, count, replace=False)
    rows = np.sort(np.append(chosen, position))
    return rows, int(np.searchsorted(rows, position))


def study_shadows(run: Run, options: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """LiRA with `count` random shadow models per target, ROC pooled over targets.

    An example enters online LiRA's ROC only if the target's shadows hold it at least once IN and once OUT,
    offline LiRA's only if at least once OUT; `coverage` is the fraction of (target, example) pairs scored.
    """
    counts = shadow_counts(run.keep.shape[0], options["counts"])
    positions = run.targets(options["targets"])
    variants = (*ONLINE_VARIANTS, *OFFLINE_VARIANTS)
    results = []
    for count in counts:
        pooled: dict[str, tuple[list, list]] = {name: ([], []) for name in variants}
        for position in positions:
            rows, target = _shadow_subset(run, position, count, options["seed"])
            keep = run.keep[rows]
            values = read_examples(subset_models(run.scores, rows), 0, run.num_examples)
            inside = keep.sum(axis=0) - keep[target]
            outside = count - inside
            for group, covered in ((ONLINE_VARIANTS, (inside > 0) & (outside > 0)), (OFFLINE_VARIANTS, outside > 0)):
                if not covered.any():
                    continue
                group_scores = lira_scores(values[:, covered], keep[:, covered], [target], group)
                for name in group:
                    pooled[name][0].append(keep[target, covered])
                    pooled[name][1].append(group_scores[name][0])
        row = {"count": count, "attacks": {}}
        for name, (membership, scores) in pooled.items():
            scored = sum(len(part) for part in membership)
            coverage = scored / (len(positions) * run.num_examples)
            membership_all = np.concatenate(membership) if membership else np.zeros(0, bool)
            if not membership or membership_all.all() or not membership_all.any():
                row["attacks"][name] = {"coverage": coverage, "metrics": None}
                continue
            metrics = attack_metrics(membership_all, np.concatenate(scores))
            row["attacks"][name] = {"coverage": coverage, "metrics": metrics}
        results.append(row)

    def cells(entry: dict[str, Any]) -> list[str]:
        metrics = entry["metrics"]
        if metrics is None:
            return ["–", "–", "–", f"{entry['coverage']:.0%}"]
        return [number(metrics["auc"]), tpr_cell(metrics), tpr_cell(metrics, LOWEST_FPR), f"{entry['coverage']:.0%}"]

    tables = []
    for name in variants:
        rows = [[row["count"], *cells(row["attacks"][name])] for row in results]
        tables.append(f"{name}\n\n" + markdown_table(["shadows", "AUC", "TPR@0.1%", "TPR@0.001%", "coverage"], rows))
    note = (
        f"{len(positions)} target(s) of {run.keep.shape[0]} models; each target's shadows are a seeded random subset "
        f"(seed {options['seed']}) of the others. Online LiRA scores only the examples that the shadows hold at least "
        "once IN and once OUT, offline LiRA those held at least once OUT; coverage is the fraction of "
        "(target, example) pairs scored, and – means none (or only one class) was. A set of one model has zero "
        "spread (σ is floored at 1e-6), so the per-example-variance variants are unreliable at small counts: see "
        "the fixed-variance ones."
    )
    return (
        "\n\n".join([note, *tables]),
        {"targets": [run.models[p] for p in positions], "counts": results},
        {
            "results": results,
            "variants": variants,
        },
    )


# ---------------------------------------------------------------------------------------------------
# (d) violins: confidence split by correct and wrong predictions


def study_violins(run: Run, options: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """φ (identity view) of every (target, example) pair in four groups, and every attack on all pairs
    against on the pairs the target classifies correctly."""
    phi, correct = identity_view_arrays(run, correctness=True)
    positions = run.targets(options["targets"])
    phi, correct, membership = phi[positions], correct[positions], run.keep[positions]
    groups = {}
    for right, right_name in ((True, "correct"), (False, "wrong")):
        for member, member_name in ((True, "member"), (False, "non-member")):
            values = phi[(correct == right) & (membership == member)]
            quartiles = np.percentile(values, [25, 50, 75]).tolist() if len(values) else [None] * 3
            groups[f"{member_name}, {right_name}"] = {"count": int(len(values)), "quartiles": quartiles}
    attack_scores = score_attacks(
        run.scores, run.keep, positions, run.default_attacks(), logits=run.logits, labels=run.labels
    )
    attacks = {}
    for name, values in attack_scores.items():
        everything = attack_metrics(membership, values)
        only_correct = (
            attack_metrics(membership[correct], values[correct])
            if membership[correct].any() and not membership[correct].all()
            else None
        )
        attacks[name] = {"all": everything, "correct_only": only_correct}
    group_rows = [
        [name, f"{group['count']:,}", *(number(q, 2) for q in group["quartiles"])] for name, group in groups.items()
    ]
    attack_rows = [
        [
            name,
            number(entry["all"]["auc"]),
            tpr_cell(entry["all"]),
            number(entry["correct_only"] and entry["correct_only"]["auc"]),
            tpr_cell(entry["correct_only"]),
        ]
        for name, entry in attacks.items()
    ]
    counts = {
        kind: (int(mask.sum()), int((mask & ~membership).sum()))
        for kind, mask in (("all", np.ones_like(correct)), ("correct", correct))
    }
    text = "\n\n".join(
        [
            f"{len(positions)} target(s); φ on the identity view; pairs (target, example) pooled",
            markdown_table(["group", "pairs", "φ 25%", "median", "75%"], group_rows),
            f"attacks on all {counts['all'][0]:,} pairs ({counts['all'][1]:,} non-members) and on the "
            f"{counts['correct'][0]:,} the target classifies correctly ({counts['correct'][1]:,} non-members)",
            markdown_table(["attack", "AUC all", "TPR@0.1% all", "AUC correct", "TPR@0.1% correct"], attack_rows),
        ]
    )
    data = {"targets": [run.models[p] for p in positions], "groups": groups, "attacks": attacks, "pairs": counts}
    return text, data, {"phi": phi, "correct": correct, "membership": membership}


# ---------------------------------------------------------------------------------------------------
# Command line


Study = Callable[..., tuple[str, dict[str, Any], dict[str, Any]]]
STUDIES: dict[str, tuple[Study, bool]] = {  # name -> (study, takes several runs)
    "defences": (study_defences, True),
    "gap": (study_gap, True),
    "shadows": (study_shadows, False),
    "violins": (study_violins, False),
}


def default_out(name: str, paths: Sequence[Path]) -> Path:
    """RUN/study-NAME; for several runs, study-NAME in their common parent folder."""
    if len(paths) == 1:
        return paths[0] / f"study-{name}"
    return Path(os.path.commonpath([path.resolve() for path in paths])) / f"study-{name}"


def run_study(name: str, paths: Sequence[str | Path], out: str | Path | None = None, **options: Any) -> dict[str, Any]:
    """Runs study `name` on the run folders, writes OUT/NAME.{md,json,png} and returns the JSON data."""
    if name not in STUDIES:
        raise UserError(f"unknown study {name!r}; known: {', '.join(STUDIES)}")
    study, several = STUDIES[name]
    paths = [Path(path) for path in paths]
    if not paths or (not several and len(paths) != 1):
        raise UserError(
            f"the {name} study takes {'one or more run folders' if several else 'one run folder'}, got {len(paths)}"
        )
    if len({path.resolve() for path in paths}) != len(paths):
        raise UserError(f"the {name} study got the same run folder twice")
    out = Path(out) if out else default_out(name, paths)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder")
    options = {"targets": "all", "seed": 0, "counts": None, **options}
    runs = [open_run(path) for path in paths]
    text, data, drawing = study(runs if several else runs[0], options)

    from lira_jax.studies import plots as study_plots  # matplotlib only once the numbers are in

    out.mkdir(parents=True, exist_ok=True)
    getattr(study_plots, f"plot_{name}")(drawing, out / f"{name}.png")
    write_atomically(out / f"{name}.md", f"# {name}: {', '.join(str(path) for path in paths)}\n\n{text}\n")
    write_atomically(
        out / f"{name}.json", json.dumps({"study": name, "runs": [str(p) for p in paths], **data}, indent=1) + "\n"
    )
    for suffix in ("md", "json", "png"):
        (out / f"{name}.{suffix}").chmod(0o644)  # temporary files are created private
    print(text)
    return data


@exits_cleanly
def main(argv: Sequence[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m lira_jax.study", description=__doc__.splitlines()[0])
    parser.add_argument("name", help=f"which study: {', '.join(STUDIES)}")
    parser.add_argument("runs", nargs="+", type=Path, help="run folder(s); several for defences and gap")
    parser.add_argument("--out", type=Path, help="output folder (default: RUN/study-NAME)")
    parser.add_argument("--targets", default="all", help="gap, shadows, violins: last, all, I,J,... or A:B")
    parser.add_argument("--counts", help="shadows: shadow counts I,J,... (default 1, 2, 4, ..., M−1)")
    parser.add_argument("--seed", type=int, default=0, help="shadows: seed of the random shadow subsets")
    args = parser.parse_args(argv)
    run_study(
        args.name,
        args.runs,
        args.out,
        targets=args.targets,
        seed=args.seed,
        counts=parse_integers(args.counts, "--counts"),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
