"""Readers for shadow models trained elsewhere: the LiRA reference code's experiment folders and its PyTorch port.

Both keep one folder per model; `read_lira_reference` stacks them into our layout (DESIGN.md's run folder):
keep bool[M, N], logits [M, N, V, C] and/or scores float32[M, N, V], labels int64[N].

The reference code (tensorflow/privacy, research/mi_lira_2021):

    LOGDIR/x_train.npy, y_train.npy         the training set (inputs scaled to [-1, 1], labels)
    LOGDIR/experiment-K_M/keep.npy          bool[N'] (N' >= N: the plotting script trims it to N)
    LOGDIR/experiment-K_M/logits/E.npy      [N, 1, V, C] for epoch E (inference.py)
    LOGDIR/experiment-K_M/scores/E.npy      [N, V] (score.py)

Model folders are found at any depth under LOGDIR by a name starting with "experiment"; the last epoch
file (in name order) of each is used, as its plotting script does. The PyTorch port (orientino/lira-pytorch):

    SAVEDIR/I/keep.npy                      bool[N] for shadow I
    SAVEDIR/I/logits.npy                    [N, V, C]
    SAVEDIR/I/scores.npy                    [N, V]

with no labels in the folder: pass them (its scripts read CIFAR-10's training labels).
Where a model has logits, φ is computed from them by the caller (exactly, `lira_jax.audit.phi.logit_scale`)
rather than taken from the saved scores, which are rounded through probabilities (log(p + 1e-45)).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from lira_jax.errors import UserError

Layout = Literal["reference", "pytorch-port"]
REFERENCE_PREFIX = "experiment"


@dataclass(frozen=True)
class ExperimentFolders:
    """Per-model folders stacked in our layout; models (folder names) in the order of the rows.

    keep: bool[M, N]; logits: float[M, N, V, C] or None; scores: float32[M, N, V] or None (at least one is
    given); labels: int64[N] or None; inputs: the reference's x_train.npy [N, ...] (memmapped) or None;
    epochs: the epoch file each model was read from (reference layout) or None.
    """

    layout: Layout
    models: list[str]
    keep: np.ndarray
    logits: np.ndarray | None
    scores: np.ndarray | None
    labels: np.ndarray | None
    inputs: np.ndarray | None
    epochs: list[str] | None


def detect_layout(path: str | Path) -> Layout | None:
    """Which layout the folder has: the reference's experiment* folders, the port's numbered ones, or None."""
    path = Path(path)
    if not path.is_dir():
        return None
    if _reference_folders(path):
        return "reference"
    if _port_folders(path):
        return "pytorch-port"
    return None


def read_lira_reference(path: str | Path, labels: Any = None) -> ExperimentFolders:
    """Reads either layout (see the module docstring). labels: int[N] (or a .npy path), needed by the port's
    logits; for the reference layout they default to LOGDIR/y_train.npy (LOGDIR: the folder holding the
    experiment folders), trimmed to N."""
    path = Path(path)
    layout = detect_layout(path)
    if layout is None:
        raise UserError(
            f"{path} is neither a LiRA reference folder (experiment*/keep.npy with logits/ or scores/) nor a "
            f"lira-pytorch folder (0/keep.npy, 0/logits.npy or 0/scores.npy, ...)"
        )
    if layout == "reference":
        folders = _reference_folders(path)
        found = [_reference_model(folder) for folder in folders]
        epochs = [epoch for _, _, _, epoch in found]
    else:
        folders = _port_folders(path)
        found = [(_load(folder / "keep.npy"), *_port_arrays(folder), None) for folder in folders]
        epochs = None
    keep_rows, logits_rows, score_rows, _ = zip(*found, strict=True)
    models = [str(folder.relative_to(path)) for folder in folders]
    logits = _stack(logits_rows, models, "logits")
    scores = _stack(score_rows, models, "scores")
    if logits is None and scores is None:
        raise UserError(
            f"{path}: every model needs logits or scores, and all the same kind; "
            f"with logits: {_names(models, logits_rows)}, with scores: {_names(models, score_rows)}"
        )
    num_examples = (logits if logits is not None else scores).shape[1]
    keep = _stack_keep(keep_rows, models, num_examples)
    logdir = folders[0].parent if len({folder.parent for folder in folders}) == 1 else path
    labels = _labels(logdir, layout, labels, num_examples, logits is not None)
    inputs = _optional(logdir / "x_train.npy") if layout == "reference" else None
    if inputs is not None and len(inputs) < num_examples:
        inputs = None
    return ExperimentFolders(
        layout=layout,
        models=models,
        keep=keep,
        logits=logits,
        scores=scores,
        labels=labels,
        inputs=None if inputs is None else inputs[:num_examples],
        epochs=None if epochs is None else list(epochs),
    )


def _reference_folders(path: Path) -> list[Path]:
    """Folders named experiment* at any depth that hold keep.npy, ordered by their numbers (experiment-K_M by K)."""
    found = [
        Path(root) / name
        for root, folders, _ in os.walk(path)
        for name in folders
        if name.startswith(REFERENCE_PREFIX) and (Path(root) / name / "keep.npy").is_file()
    ]
    return sorted(found, key=lambda folder: (_numbers(folder.name), str(folder)))


def _port_folders(path: Path) -> list[Path]:
    found = [
        folder
        for folder in path.iterdir()
        if folder.is_dir() and folder.name.isdecimal() and (folder / "keep.npy").is_file()
    ]
    return sorted(found, key=lambda folder: int(folder.name))


def _numbers(name: str) -> list[int]:
    return [int(number) for number in re.findall(r"\d+", name)]


def _reference_model(folder: Path) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, str]:
    """keep, logits [N, V, C], scores [N, V] of one reference model at its last epoch (as plot.py reads it)."""
    keep = _load(folder / "keep.npy")
    epochs = {kind: _epoch_files(folder / kind) for kind in ("logits", "scores")}
    last = max((files[-1].stem for files in epochs.values() if files), default=None)
    if last is None:
        raise UserError(f"{folder} has neither logits/ nor scores/ with an epoch file (run inference.py first)")
    logits = _optional(folder / "logits" / f"{last}.npy")
    scores = _optional(folder / "scores" / f"{last}.npy")
    if logits is not None:
        if logits.ndim == 4 and logits.shape[1] == 1:  # inference.py saves [N, 1, V, C]
            logits = logits[:, 0]
        logits = _with_view_axis(logits, 3, folder / "logits" / f"{last}.npy")
    if scores is not None:
        if scores.ndim == 3 and scores.shape[1] == 1:
            scores = scores[:, 0]
        scores = _with_view_axis(scores, 2, folder / "scores" / f"{last}.npy")
    return keep, logits, scores, last


def _port_arrays(folder: Path) -> tuple[np.ndarray | None, np.ndarray | None]:
    logits = _optional(folder / "logits.npy")
    scores = _optional(folder / "scores.npy")
    return (
        None if logits is None else _with_view_axis(logits, 3, folder / "logits.npy"),
        None if scores is None else _with_view_axis(scores, 2, folder / "scores.npy"),
    )


def _epoch_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(file for file in folder.iterdir() if file.suffix == ".npy")


def _with_view_axis(array: np.ndarray, ndim: int, path: Path) -> np.ndarray:
    """[N, V, C] logits or [N, V] scores; one view fewer ([N, C], [N]) gets the view axis."""
    if array.ndim == ndim - 1:
        array = array[:, None]
    if array.ndim != ndim or array.dtype.kind != "f":
        wanted = "[N, V, C] or [N, C]" if ndim == 3 else "[N, V] or [N]"
        raise UserError(f"{path} must be floating point {wanted}, got {array.dtype}{list(array.shape)}")
    return array


def _stack(rows: tuple[np.ndarray | None, ...], models: list[str], name: str) -> np.ndarray | None:
    """The rows stacked into [M, ...] (in memory, as the reference's plot.py does), or None if any is missing."""
    if any(row is None for row in rows):
        return None
    shapes = {row.shape for row in rows}
    if len(shapes) > 1:
        listed = ", ".join(f"{model}: {list(row.shape)}" for model, row in zip(models, rows, strict=True))
        raise UserError(f"the models' {name} differ in shape ({listed})")
    stacked = np.stack(rows)
    return stacked.astype(np.float32) if name == "scores" else stacked


def _stack_keep(rows: tuple[np.ndarray, ...], models: list[str], num_examples: int) -> np.ndarray:
    for model, row in zip(models, rows, strict=True):
        if row.ndim != 1 or row.shape[0] < num_examples:
            raise UserError(f"{model}/keep.npy must be [N'] with N' >= {num_examples}, got {list(row.shape)}")
        if row.dtype != bool and not (row.dtype.kind in "iu" and np.isin(row, (0, 1)).all()):
            raise UserError(f"{model}/keep.npy must be bool or 0/1 integers, got {row.dtype}")
    return np.stack([row[:num_examples].astype(bool) for row in rows])


def _labels(path: Path, layout: Layout, labels: Any, num_examples: int, needed: bool) -> np.ndarray | None:
    if labels is None and layout == "reference":
        labels = _optional(path / "y_train.npy")
    elif isinstance(labels, str | Path):
        labels = _load(Path(labels))
    if labels is None:
        if needed:
            raise UserError(f"{path} holds logits but no labels: pass the training labels (int[{num_examples}])")
        return None
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu" or labels.ndim != 1 or labels.shape[0] < num_examples:
        raise UserError(
            f"labels must be integers [N'] with N' >= {num_examples}, got {labels.dtype}{list(labels.shape)}"
        )
    return labels[:num_examples].astype(np.int64)


def _names(models: list[str], rows: tuple[np.ndarray | None, ...]) -> str:
    return ", ".join(model for model, row in zip(models, rows, strict=True) if row is not None) or "none"


def _optional(path: Path) -> np.ndarray | None:
    return _load(path) if path.is_file() else None


def _load(path: Path) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise UserError(f"cannot read {path}: {error}") from None


def reference_run(path: str | Path, labels: Any = None) -> dict[str, Any]:
    """A reference folder as `lira_jax.store.load_run` returns a run folder: {keep, labels, scores (None where
    logits are read: φ is then computed from them), logits, models: all, records: None, config: None,
    config_text: None, inputs: x_train.npy or None}."""
    read = read_lira_reference(path, labels)
    if read.keep.shape[0] < 2:
        raise UserError(f"at least 2 models are needed (one target, one shadow); {path} has {read.keep.shape[0]}")
    return {
        "keep": read.keep,
        "labels": read.labels,
        "scores": None if read.logits is not None else read.scores,
        "logits": read.logits,
        "models": list(range(read.keep.shape[0])),
        "records": None,
        "config": None,
        "config_text": None,
        "inputs": read.inputs,
    }
