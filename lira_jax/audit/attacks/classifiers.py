"""Attack classifiers trained on shadow models' outputs: Shokri et al. (2017) and ML-Leaks (Salem et al., 2019).

Features are probability vectors sorted in decreasing order (softmax of the logits, or of the masked
pseudo-logits, under one query view, the first: identity in runs made by `lira_jax.train`); an attack
model is scikit-learn's MLPClassifier (one hidden layer of 64 units, L-BFGS), trained on shadow models' outputs
labelled member (1) or non-member (0):

- `shokri`: one attack model per class (the example's label) on the whole sorted vector.
- `ml_leaks_adv1`: ML-Leaks adversary 1: one shadow model and one attack model, on the top 3 sorted
  probabilities (zero-padded below 3 classes).
- `ml_leaks_adv2`: adversary 2 (data transfer): the shadow model comes from another run, trained on
  another data set; the top 3 sorted probabilities make the two data sets' class counts irrelevant.
- Adversary 3 (a threshold on the maximum probability or on the entropy, no shadow model) is the
  `confidence` and `entropy` baselines of `lira_jax.audit.attacks.baselines`.

Cross-fitting. Every model of a run is a target once and the others are its shadows, and all models
answer queries on one pool of examples. An attack model trained on rows (m, n) and evaluated on (t, n)
could learn the target's own outputs (if m = t) or example n's features (which every model shares, so an
example always predicted with one odd confidence would be recognised whatever the membership). So
the targets are split into `model_folds` folds and the examples into 2 halves (seeded, stratified by
label), and the attack model that scores targets in fold k on examples in half h is trained only on
models outside fold k (the other targets' folds and every non-target model) and examples in the other
half. `shokri` fits one attack model per (fold, half, class), `ml_leaks_adv1` one per (fold, half),
its shadow one model drawn from outside the fold; `ml_leaks_adv2` one in all, on the other run, which
shares no row with this one. Each attack model sees at most `max_rows` rows, drawn at random (seeded)
from its candidates: training cost is bounded whatever M and N are.

Scores are the attack model's member log-odds, log p − log(1 − p) (p clipped to [ε, 1 − ε], ε the
float64 machine epsilon): float32[T, N], higher = member; p > 0.5 (log-odds > 0) is the classifier's
own decision (scikit-learn's `predict`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import log_softmax
from threadpoolctl import threadpool_limits

from lira_jax.audit.inputs.checked import (
    AttackInputs,
    NotApplicable,
    TransferShadow,
    check_logits,
    check_scores_keep,
)
from lira_jax.audit.streaming import ExampleArray, check_finite, map_example_chunks, subset_models
from lira_jax.errors import UserError

CLASSIFIERS = ("shokri", "ml_leaks_adv1", "ml_leaks_adv2")
TOP_PROBABILITIES = 3
HIDDEN_UNITS = 64
MAX_ITERATIONS = 50  # of L-BFGS
MODEL_FOLDS = 2
MAX_ROWS = 2000
FEATURE_BYTES = 8  # float64 features


def sorted_probabilities(logits: np.ndarray, width: int) -> np.ndarray:
    """Softmax of logits float[..., C], sorted in decreasing order, cut or zero-padded to `width`: float64."""
    probabilities = -np.sort(-np.exp(log_softmax(np.asarray(logits, dtype=np.float64), axis=-1)), axis=-1)
    padding = max(0, width - probabilities.shape[-1])
    return np.pad(probabilities[..., :width], [(0, 0)] * (probabilities.ndim - 1) + [(0, padding)])


@dataclass(frozen=True)
class CrossFit:
    """Which rows train which attack model: fold: int64[T], each target's model fold; half: int8[N]."""

    fold: np.ndarray
    half: np.ndarray
    num_folds: int

    def shadows(self, num_models: int, targets: np.ndarray, fold: int) -> np.ndarray:
        """Models outside fold `fold`: every model but the targets in it, int64[S]."""
        outside = np.ones(num_models, dtype=bool)
        outside[targets[self.fold == fold]] = False
        return np.flatnonzero(outside)


def cross_fit(targets: np.ndarray, labels: np.ndarray, model_folds: int, rng: np.random.Generator) -> CrossFit:
    """Targets in min(model_folds, T) folds of near-equal size; examples in 2 halves, each class split evenly."""
    num_folds = min(model_folds, len(targets))
    fold = np.empty(len(targets), dtype=np.int64)
    for index, part in enumerate(np.array_split(rng.permutation(len(targets)), num_folds)):
        fold[part] = index
    order = rng.permutation(len(labels))
    order = order[np.argsort(labels[order], kind="stable")]
    half = np.empty(len(labels), dtype=np.int8)
    half[order] = np.arange(len(labels)) % 2
    return CrossFit(fold, half, num_folds)


def _sample_pairs(
    models: np.ndarray, examples: np.ndarray, max_rows: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Up to max_rows distinct (model, example) pairs of models x examples, uniformly: two int64[R]."""
    total = len(models) * len(examples)
    chosen = rng.choice(total, size=min(total, max_rows), replace=False) if total else np.zeros(0, dtype=np.int64)
    return models[chosen // len(examples)], examples[chosen % len(examples)]


def _pair_features(
    logits: ExampleArray, models: np.ndarray, examples: np.ndarray, width: int, view: int, workers: int | None
) -> np.ndarray:
    """sorted_probabilities(logits[models[i], examples[i], view], width) for every pair i: float64[R, width].

    One pass over the logits in chunks of examples; each chunk gives the pairs that fall in it.
    """
    order = np.argsort(examples, kind="stable")
    sorted_examples = examples[order]

    def work(start: int, stop: int, chunk: np.ndarray) -> np.ndarray:
        check_finite(chunk, "logits", start, logits)
        first, last = np.searchsorted(sorted_examples, [start, stop])
        picked = order[first:last]
        return sorted_probabilities(chunk[models[picked], examples[picked] - start, view], width)

    num_models, num_examples, num_views, num_classes = logits.shape
    parts = map_example_chunks(work, [logits], num_examples, 8 * num_models * num_views * num_classes, None, workers)
    features = np.empty((len(examples), width), dtype=np.float64)
    features[order] = np.concatenate(parts)
    return features


class AttackModel:
    """An MLP fitted on features float64[R, W] and membership bool[R]; a constant where the rows hold only
    one membership value (or none): the log-odds of that value's share, clipped."""

    def __init__(self, features: np.ndarray, membership: np.ndarray, seed: int):
        self.mlp = None
        self.constant = 0.0
        if len(np.unique(membership)) < 2:
            self.constant = _log_odds(np.full(1, membership.mean() if len(membership) else 0.5))[0]
            return
        from sklearn.exceptions import ConvergenceWarning  # scikit-learn takes seconds to import: only when used
        from sklearn.neural_network import MLPClassifier

        # full-batch L-BFGS, which scikit-learn recommends for small training sets such as these: on the digits
        # run, at 50 iterations, 1.5x cheaper than its default Adam at 100 epochs, and shokri's AUC 0.54, not 0.51
        self.mlp = MLPClassifier(
            hidden_layer_sizes=(HIDDEN_UNITS,), solver="lbfgs", max_iter=MAX_ITERATIONS, random_state=seed
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # a capped fit is still a valid attack model
            self.mlp.fit(features, membership)

    def log_odds(self, features: np.ndarray) -> np.ndarray:
        """Member log-odds of features float64[R, W]: float64[R]."""
        if self.mlp is None or len(features) == 0:
            return np.full(len(features), self.constant)
        return _log_odds(self.mlp.predict_proba(features)[:, list(self.mlp.classes_).index(True)])


def _log_odds(probability: np.ndarray) -> np.ndarray:
    epsilon = np.finfo(np.float64).eps
    probability = np.clip(probability, epsilon, 1 - epsilon)
    return np.log(probability) - np.log1p(-probability)


def _width(name: str, num_classes: int) -> int:
    """Features of an attack: the whole sorted vector (shokri) or its top 3 (ML-Leaks)."""
    return num_classes if name == "shokri" else TOP_PROBABILITIES


@dataclass(frozen=True)
class _Cell:
    """One attack model: the rows it scores (targets in `fold`, examples in `half` with label `label`;
    None: any) and its training rows `pairs` (models, examples: of this run, or of the other run)."""

    fold: int | None
    half: int | None
    label: int | None
    pairs: tuple[np.ndarray, np.ndarray]

    def scored(self, half: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """bool[n]: which of the examples with these halves int8[n] and labels int[n] the cell scores."""
        return (self.half is None or half == self.half) & (self.label is None or labels == self.label)


def _seeds(seed: int, name: str, *more: int) -> np.random.SeedSequence:
    """The randomness of one attack (and cell): independent of which other attacks run alongside."""
    return np.random.SeedSequence([seed, CLASSIFIERS.index(name), *more])


def _plan_cells(
    name: str,
    labels: np.ndarray,
    num_models: int,
    targets: np.ndarray,
    split: CrossFit,
    max_rows: int,
    seed: int,
    transfer: TransferShadow | None,
) -> list[_Cell]:
    """The attack models of one attack: which rows each scores and which it is trained on."""
    rng = np.random.default_rng(_seeds(seed, name))
    if name == "ml_leaks_adv2":
        return [
            _Cell(
                None,
                None,
                None,
                _sample_pairs(np.array([transfer.model]), np.arange(transfer.keep.shape[1]), max_rows, rng),
            )
        ]
    cells = []
    for fold in range(split.num_folds):
        shadows = split.shadows(num_models, targets, fold)
        if name == "ml_leaks_adv1":
            shadows = shadows[rng.integers(len(shadows))][None]  # one shadow model
        for half in (0, 1):
            models, examples = _sample_pairs(shadows, np.flatnonzero(split.half != half), max_rows, rng)
            if name == "ml_leaks_adv1":
                cells.append(_Cell(fold, half, None, (models, examples)))
                continue
            for label in np.unique(labels):  # shokri: the rows shared out over one attack model per class
                of_label = labels[examples] == label
                cells.append(_Cell(fold, half, int(label), (models[of_label], examples[of_label])))
    return cells


def _fit_cells(
    name: str, cells: list[_Cell], logits: ExampleArray, keep: np.ndarray, view: int, seed: int, workers: int | None
) -> list[AttackModel]:
    """One AttackModel per cell of an attack, their rows read from logits in one pass."""
    num_classes = logits.shape[3]
    pair_models = np.concatenate([cell.pairs[0] for cell in cells])
    pair_examples = np.concatenate([cell.pairs[1] for cell in cells])
    features = _pair_features(logits, pair_models, pair_examples, _width(name, num_classes), view, workers)
    fitted, offset = [], 0
    for index, cell in enumerate(cells):
        rows = slice(offset, offset + len(cell.pairs[0]))
        offset = rows.stop
        mlp_seed = int(_seeds(seed, name, index).generate_state(1)[0])
        fitted.append(AttackModel(features[rows], keep[cell.pairs], mlp_seed))
    return fitted


def training_pairs(
    keep: np.ndarray,
    labels: np.ndarray,
    targets: Sequence[int],
    names: Sequence[str] = CLASSIFIERS[:2],
    *,
    model_folds: int = MODEL_FOLDS,
    max_rows: int = MAX_ROWS,
    seed: int = 0,
) -> tuple[CrossFit, dict[str, list[tuple[int | None, int | None, int | None, np.ndarray, np.ndarray]]]]:
    """The cross-fitting plan of `classifier_scores` for this run's attacks (not ml_leaks_adv2), to inspect:
    (split, {name: [(fold, half, label, models int64[R], examples int64[R]) per attack model]})."""
    targets, labels = np.asarray(targets, dtype=np.int64), np.asarray(labels)
    split = cross_fit(targets, labels, model_folds, np.random.default_rng(seed))
    num_models = np.asarray(keep).shape[0]
    return split, {
        name: [
            (cell.fold, cell.half, cell.label, *cell.pairs)
            for cell in _plan_cells(name, labels, num_models, targets, split, max_rows, seed, None)
        ]
        for name in names
    }


def classifier_scores(
    logits: ExampleArray,
    keep: np.ndarray,
    labels: Any,
    targets: Sequence[int] | None = None,
    names: Sequence[str] = CLASSIFIERS[:2],
    *,
    transfer: TransferShadow | None = None,
    model_folds: int = MODEL_FOLDS,
    max_rows: int = MAX_ROWS,
    seed: int = 0,
    view: int = 0,
    workers: int | None = None,
) -> dict[str, np.ndarray]:
    """{name: float32[T, N]} member log-odds of the attack classifiers (see the module docstring).

    logits: float[M, N, V, C] (masked pseudo-logits are fine); keep: bool[M, N]; labels: int[N];
    targets: model indices (default: all). ml_leaks_adv2 needs `transfer`, the other run's shadow.
    """
    names = list(names)
    unknown = [name for name in names if name not in CLASSIFIERS]
    if unknown:
        raise UserError(f"unknown attack classifier(s) {unknown}; known: {list(CLASSIFIERS)}")
    labels = check_logits(logits, labels, logits.shape[:3])
    # keep and targets are checked against the logits' [M, N] (a zero-copy stand-in for scores [M, N, V])
    keep, targets = check_scores_keep(np.broadcast_to(np.float32(0), logits.shape[:3]), keep, targets)
    check_settings(max_rows, model_folds, view, logits.shape[2])
    if "ml_leaks_adv2" in names:
        check_transfer(transfer)
    results = _classifiers(logits, keep, labels, targets, names, transfer, model_folds, max_rows, seed, view, workers)
    for name, values in results.items():
        if isinstance(values, NotApplicable):
            raise UserError(f"{name}: {values.reason}")
    return results


def classifier_family(inputs: AttackInputs, names: Sequence[str]) -> dict[str, np.ndarray | NotApplicable]:
    """The registry's attack classifiers: {name: float32[T, N]} for names of CLASSIFIERS, with the options'
    training rows (default MAX_ROWS), MODEL_FOLDS folds, seed 0, on the first view; NotApplicable where an
    attack model would see one membership only (`_one_sided`)."""
    max_rows = inputs.options.classifier_rows or MAX_ROWS
    return _classifiers(
        inputs.logits,
        inputs.keep,
        inputs.labels,
        inputs.targets,
        names,
        inputs.transfer,
        MODEL_FOLDS,
        max_rows,
        0,
        0,
        inputs.options.workers,
    )


def check_settings(max_rows: int, model_folds: int, view: int, num_views: int) -> None:
    """UserError unless max_rows >= 2, model_folds >= 1 and 0 <= view < num_views."""
    if max_rows < 2 or model_folds < 1 or not 0 <= view < num_views:
        raise UserError(
            f"attack classifiers need max_rows >= 2, model_folds >= 1 and a view in [0, {num_views}), "
            f"got {max_rows}, {model_folds}, {view}"
        )


def check_transfer(transfer: TransferShadow | None) -> None:
    """UserError unless `transfer` is a shadow model of another run: logits [M', N', V', C'], keep [M', N']."""
    if (
        transfer is None
        or getattr(transfer.logits, "ndim", None) != 4
        or transfer.keep.shape != tuple(transfer.logits.shape[:2])
        or not 0 <= transfer.model < transfer.keep.shape[0]
    ):
        raise UserError("ml_leaks_adv2 (data transfer) needs a shadow model of another run: logits [M, N, V, C], keep")


def _classifiers(
    logits: ExampleArray,
    keep: np.ndarray,
    labels: np.ndarray,
    targets: np.ndarray,
    names: Sequence[str],
    transfer: TransferShadow | None,
    model_folds: int,
    max_rows: int,
    seed: int,
    view: int,
    workers: int | None,
) -> dict[str, np.ndarray | NotApplicable]:
    """`classifier_scores` on checked inputs: labels int64[N], targets int64[T]."""
    split = cross_fit(targets, labels, model_folds, np.random.default_rng(seed))
    cells, models, skipped = {}, {}, {}
    with threadpool_limits(1):  # BLAS threads only contend on these small matrices (9x slower on 2 cores)
        for name in names:
            cells[name] = _plan_cells(name, labels, keep.shape[0], targets, split, max_rows, seed, transfer)
            reason = _one_sided(cells[name], transfer.keep if name == "ml_leaks_adv2" else keep, split, labels)
            if reason is not None:
                skipped[name] = NotApplicable(reason)
            elif name == "ml_leaks_adv2":
                models[name] = _fit_cells(name, cells[name], transfer.logits, transfer.keep, 0, seed, workers)
            else:
                models[name] = _fit_cells(name, cells[name], logits, keep, view, seed, workers)
    num_classes = logits.shape[3]
    width = max(num_classes, TOP_PROBABILITIES)
    target_logits = subset_models(logits, targets)

    def work(start: int, stop: int, chunk: np.ndarray) -> dict[str, np.ndarray]:
        check_finite(chunk, "logits", start, target_logits)
        features = sorted_probabilities(chunk[:, :, view], width)  # [T, n, W]
        half, chunk_labels = split.half[start:stop], labels[start:stop]
        result = {}
        for name in models:
            values = np.empty(features.shape[:2], dtype=np.float32)
            for index, cell in enumerate(cells[name]):
                rows = np.flatnonzero(split.fold == cell.fold) if cell.fold is not None else np.arange(len(targets))
                columns = np.flatnonzero(np.broadcast_to(cell.scored(half, chunk_labels), half.shape))
                cell_width = _width(name, num_classes)
                picked = features[rows[:, None], columns[None, :], :cell_width].reshape(-1, cell_width)
                values[rows[:, None], columns[None, :]] = (
                    models[name][index].log_odds(picked).reshape(len(rows), len(columns))
                )
            result[name] = values
        return result

    bytes_per_example = FEATURE_BYTES * len(targets) * (logits.shape[2] * logits.shape[3] + 2 * width)
    with threadpool_limits(1):
        parts = map_example_chunks(work, [target_logits], logits.shape[1], bytes_per_example, None, workers)
    scored = {name: np.concatenate([part[name] for part in parts], axis=1) for name in models}
    return {name: skipped[name] if name in skipped else scored[name] for name in names}


def _one_sided(cells: list[_Cell], keep: np.ndarray, split: CrossFit, labels: np.ndarray) -> str | None:
    """Why an attack cannot be trained, or None: one of its attack models that scores some example would
    be fitted on rows of one membership only, or on none (keep: bool of the run its rows come from)."""
    for cell in cells:
        membership = keep[cell.pairs]
        if np.any(cell.scored(split.half, labels)) and (membership.all() or not membership.any()):
            named = (("fold", cell.fold), ("half", cell.half), ("class", cell.label))
            where = ", ".join(f"{what} {value}" for what, value in named if value is not None) or "the one"
            return f"an attack model ({where}) would be trained on rows of one membership only"
    return None
