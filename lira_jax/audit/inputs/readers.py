"""Readers for shadow models trained elsewhere: the LiRA reference code's experiment folders and its PyTorch port.

Both keep one folder per model; `read_lira_reference` stacks them into our layout (DESIGN.md's run folder):
keep bool[M, N], logits [M, N, V, C] and/or scores float32[M, N, V], labels int64[N].

The reference code (tensorflow/privacy, research/mi_lira_2021):

    LOGDIR/x_train.npy, y_train.npy         the training set (inputs scaled to [-1, 1], labels)
    LOGDIR/experiment-K_M/keep.npy          bool[N'] (N' >= N: the plotting script trims it to N)
    LOGDIR/experiment-K_M/logits/E.npy      [N, 1, V, C] for epoch E (inference.py)
    LOGDIR/experiment-K_M/scores/E.npy      [N, V] (score.py)

Model folders are found at any depth under LOGDIR by a name starting with "experiment" (a folder that only
groups experiment folders is not one); each must hold keep.npy and an epoch file, or it is named in an error,
never dropped. Epoch files are E.npy with E a number, ordered by it (10 after 9); any other file there is not
an epoch. Each model's last epoch is read, as plot.py does (the epochs read are reported where they differ).
The PyTorch port (orientino/lira-pytorch):

    SAVEDIR/I/keep.npy                      bool[N] for shadow I
    SAVEDIR/I/logits.npy                    [N, V, C]
    SAVEDIR/I/scores.npy                    [N, V]

with no labels in the folder: pass them (its scripts read CIFAR-10's training labels).
Where every model has logits, φ is computed from them by the caller (exactly, `lira_jax.audit.inputs.phi.logit_scale`)
rather than taken from the saved scores, which are rounded through probabilities (log(p + 1e-45)); the folders
without logits are named when the scores are read instead. Every file read is listed (`files`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from lira_jax.arrays import read_npy
from lira_jax.audit.inputs.arguments import picture_problem
from lira_jax.errors import UserError

Layout = Literal["reference", "pytorch-port"]
REFERENCE_PREFIX = "experiment"
KINDS = ("logits", "scores")


@dataclass(frozen=True)
class ExperimentFolders:
    """Per-model folders stacked in our layout; models (folder names) in the order of the rows.

    keep: bool[M, N]; logits: float[M, N, V, C] or None (None unless every model has them); scores:
    float32[M, N, V] or None (at least one is given); labels: int64[N] or None; inputs: the reference's
    x_train.npy [N, ...] (memmapped) or None; epochs: the epoch file each model was read from (reference
    layout) or None; files: every file read; folders: the model folders; notes: what a reader should know
    (folders without logits whose scores were read instead, epochs that differ between models).
    """

    layout: Layout
    models: list[str]
    keep: np.ndarray
    logits: np.ndarray | None
    scores: np.ndarray | None
    labels: np.ndarray | None
    inputs: np.ndarray | None
    epochs: list[str] | None
    files: list[Path] = field(default_factory=list)
    folders: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


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
    folders = _reference_folders(path) if layout == "reference" else _port_folders(path)
    models = [str(folder.relative_to(path)) for folder in folders]
    kind, chosen, scores_files, notes = _files_to_read(path, layout, folders, models)
    keep_rows = [read_npy(folder / "keep.npy") for folder in folders]
    logits = _stack([_logits(file) for file in chosen], models, "logits") if kind == "logits" else None
    scores = None if scores_files is None else _stack([_scores(file) for file in scores_files], models, "scores")
    num_examples = (logits if logits is not None else scores).shape[1]
    keep = _stack_keep(keep_rows, models, num_examples)
    logdir = folders[0].parent if len({folder.parent for folder in folders}) == 1 else path
    labels, labels_file = _labels(logdir, layout, labels, num_examples, logits is not None)
    inputs_file = logdir / "x_train.npy" if layout == "reference" and (logdir / "x_train.npy").is_file() else None
    inputs = None if inputs_file is None else read_npy(inputs_file)
    problem = None if inputs is None else picture_problem(inputs.dtype, inputs.shape, len(inputs))
    if inputs is not None and (len(inputs) < num_examples or problem):
        notes.append(f"{inputs_file} is not drawn as thumbnails: {problem or f'it has fewer than {num_examples} rows'}")
        inputs, inputs_file = None, None
    epochs = [file.stem for file in chosen] if layout == "reference" else None
    if epochs and len(set(epochs)) > 1:
        last = max(set(epochs), key=epochs.count)
        other = [f"{model} ({epoch})" for model, epoch in zip(models, epochs, strict=True) if epoch != last]
        notes.append(f"the last epochs differ: {last} for {epochs.count(last)} models, {_listed(other)}")
    read = [folder / "keep.npy" for folder in folders] + chosen
    read += scores_files if kind == "logits" and scores_files else []
    read += [file for file in (labels_file, inputs_file) if file is not None]
    return ExperimentFolders(
        layout=layout,
        models=models,
        keep=keep,
        logits=logits,
        scores=scores,
        labels=labels,
        inputs=None if inputs is None else inputs[:num_examples],
        epochs=epochs,
        files=read,
        folders=list(folders),
        notes=notes,
    )


def _files_to_read(
    path: Path, layout: Layout, folders: list[Path], models: list[str]
) -> tuple[str, list[Path], list[Path] | None, list[str]]:
    """(the kind read: logits where every model has them, else scores; each model's file of that kind; the
    scores files, beside the logits only when every model has them at the same epoch, else None; notes).
    UserError naming the folders that lack keep.npy or both kinds of file."""
    missing = [model for model, folder in zip(models, folders, strict=True) if not (folder / "keep.npy").is_file()]
    if missing:
        raise UserError(f"{path}: no keep.npy in {_listed(missing)} (every model folder needs one)")
    files = {kind: [_model_file(folder, kind, layout) for folder in folders] for kind in KINDS}
    neither = [model for model, *found in zip(models, *files.values(), strict=True) if not any(found)]
    if neither:
        wanted = "logits/E.npy nor scores/E.npy" if layout == "reference" else "logits.npy nor scores.npy"
        run = " (run inference.py)" if layout == "reference" else ""
        raise UserError(f"{path}: neither {wanted} in {_listed(neither)}{run}")
    if not all(files["logits"]):
        without = [model for model, file in zip(models, files["logits"], strict=True) if file is None]
        unscored = [model for model, file in zip(models, files["scores"], strict=True) if file is None]
        if unscored:  # some models have only logits, others only scores: no kind is read for every model
            raise UserError(
                f"{path}: {_listed(without)} have only scores and {_listed(unscored)} only logits; every model"
                " needs the same kind (run score.py for every model, or give every model its logits)"
            )
        notes = [f"scores read for every model, as some have no logits: {_listed(without)}"]
        return "scores", files["scores"], files["scores"], notes if any(files["logits"]) else []
    beside = [
        scores is not None and (layout == "pytorch-port" or scores.name == logits.name)
        for logits, scores in zip(files["logits"], files["scores"], strict=True)
    ]
    return "logits", files["logits"], files["scores"] if all(beside) else None, []


def _reference_folders(path: Path) -> list[Path]:
    """Folders named experiment* at any depth, except those that only group others, ordered by their numbers
    (experiment-K_M by K). A folder holding none of keep.npy, logits/ and scores/ is one only if it holds no
    experiment folder either."""
    found = [
        Path(root) / name for root, folders, _ in os.walk(path) for name in folders if name.startswith(REFERENCE_PREFIX)
    ]
    grouping = {parent for folder in found for parent in folder.parents}
    found = [
        folder
        for folder in found
        if folder not in grouping or any((folder / name).exists() for name in ("keep.npy", *KINDS))
    ]
    return sorted(found, key=lambda folder: (_numbers(folder.name), str(folder)))


def _port_folders(path: Path) -> list[Path]:
    """The port's numbered model folders, by number; only where one of them holds keep.npy."""
    found = [folder for folder in path.iterdir() if folder.is_dir() and folder.name.isdecimal()]
    if not any((folder / "keep.npy").is_file() for folder in found):
        return []
    return sorted(found, key=lambda folder: int(folder.name))


def _numbers(name: str) -> list[int]:
    return [int(number) for number in re.findall(r"\d+", name)]


def _model_file(folder: Path, kind: str, layout: Layout) -> Path | None:
    """The file of `kind` (logits or scores) a model is read from: the port's KIND.npy, or the reference's
    last epoch file KIND/E.npy (E a number; others are not epochs), or None."""
    if layout == "pytorch-port":
        return folder / f"{kind}.npy" if (folder / f"{kind}.npy").is_file() else None
    epochs = folder / kind
    if not epochs.is_dir():
        return None
    numbered = [file for file in epochs.iterdir() if file.suffix == ".npy" and file.stem.isdecimal() and file.is_file()]
    return max(numbered, key=lambda file: (int(file.stem), file.name), default=None)


def _logits(file: Path) -> np.ndarray:
    """One model's logits [N, V, C] from the reference's [N, 1, V, C] (inference.py), [N, V, C] or [N, C]."""
    logits = read_npy(file)
    if logits.ndim == 4 and logits.shape[1] == 1:
        logits = logits[:, 0]
    return _with_view_axis(logits, 3, file)


def _scores(file: Path) -> np.ndarray:
    """One model's saved scores [N, V] from [N, 1, V], [N, V] or [N]."""
    scores = read_npy(file)
    if scores.ndim == 3 and scores.shape[1] == 1:
        scores = scores[:, 0]
    return _with_view_axis(scores, 2, file)


def _with_view_axis(array: np.ndarray, ndim: int, path: Path) -> np.ndarray:
    """[N, V, C] logits or [N, V] scores; one view fewer ([N, C], [N]) gets the view axis."""
    if array.ndim == ndim - 1:
        array = array[:, None]
    if array.ndim != ndim or array.dtype.kind != "f":
        wanted = "[N, V, C] or [N, C]" if ndim == 3 else "[N, V] or [N]"
        raise UserError(f"{path} must be floating point {wanted}, got {array.dtype}{list(array.shape)}")
    return array


def _stack(rows: list[np.ndarray], models: list[str], name: str) -> np.ndarray:
    """The rows stacked into [M, ...] (in memory, as the reference's plot.py does)."""
    shapes = {row.shape for row in rows}
    if len(shapes) > 1:
        listed = ", ".join(f"{model}: {list(row.shape)}" for model, row in zip(models, rows, strict=True))
        raise UserError(f"the models' {name} differ in shape ({listed})")
    stacked = np.stack(rows)
    return stacked.astype(np.float32) if name == "scores" else stacked


def _stack_keep(rows: list[np.ndarray], models: list[str], num_examples: int) -> np.ndarray:
    for model, row in zip(models, rows, strict=True):
        if row.ndim != 1 or row.shape[0] < num_examples:
            raise UserError(f"{model}/keep.npy must be [N'] with N' >= {num_examples}, got {list(row.shape)}")
        if row.dtype != bool and not (row.dtype.kind in "iu" and np.isin(row, (0, 1)).all()):
            raise UserError(f"{model}/keep.npy must be bool or 0/1 integers, got {row.dtype}")
    return np.stack([row[:num_examples].astype(bool) for row in rows])


def _labels(
    path: Path, layout: Layout, labels: Any, num_examples: int, needed: bool
) -> tuple[np.ndarray | None, Path | None]:
    """(labels int64[N] or None, the file they were read from or None)."""
    source = None
    if labels is None and layout == "reference" and (path / "y_train.npy").is_file():
        source = path / "y_train.npy"
    elif isinstance(labels, str | Path):
        source = Path(labels)
        if not source.is_file():
            raise UserError(f"labels {source} is not a file")
    if source is not None:
        labels = read_npy(source, mmap=False)
    if labels is None:
        if needed:
            raise UserError(f"{path} holds logits but no labels: pass the training labels (int[{num_examples}])")
        return None, None
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu" or labels.ndim != 1 or labels.shape[0] < num_examples:
        raise UserError(
            f"labels must be integers [N'] with N' >= {num_examples}, got {labels.dtype}{list(labels.shape)}"
        )
    return labels[:num_examples].astype(np.int64), source


def _listed(names: list[str], shown: int = 5) -> str:
    """The first `shown` names and how many more."""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def reference_run(path: str | Path, labels: Any = None) -> dict[str, Any]:
    """A reference folder as `lira_jax.store.load_run` returns a run folder: {keep, labels, scores (None where
    logits are read: φ is then computed from them), logits, models: all, records: None, config: None,
    config_text: None, inputs: x_train.npy or None, files: every file read, folders: the model folders,
    phi: where φ comes from, notes, summary: the files read in a line}."""
    read = read_lira_reference(path, labels)
    if read.keep.shape[0] < 2:
        raise UserError(f"at least 2 models are needed (one target, one shadow); {path} has {read.keep.shape[0]}")
    where = "logits/E.npy" if read.layout == "reference" else "logits.npy"
    saved = "scores/E.npy" if read.layout == "reference" else "scores.npy"
    kinds = [name for name, array in ((where, read.logits), (saved, read.scores)) if array is not None]
    outside = [str(file) for file in read.files if not ({file.parent, file.parent.parent} & set(read.folders))]
    summary = ", ".join([f"{len(read.folders)} model folders under {path} (keep.npy, {', '.join(kinds)})", *outside])
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
        "files": read.files,
        "folders": read.folders,
        "phi": f"computed from each model's {where}" if read.logits is not None else f"each model's {saved}",
        "notes": read.notes,
        "summary": summary,
    }
