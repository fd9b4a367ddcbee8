"""The run folder: memmapped arrays, per-model progress, safe resume, atomic writes; and its one reader.

Layout (docs/run_folder.md): config.toml, keep.npy bool[M, N], labels.npy int32[N], scores.npy float32[M, N, V],
logits.npy float16|float32[M, N, V, C] (unless query.logits_dtype = "none"), models.json; the same
scores.npy and logits.npy under epochs/E/ for each epoch snapshot E of query.save_epochs; checkpoints/
while a chunk is unfinished (checkpoints.py).

Rules that keep a run from losing or faking anything:
- A folder is created whole or not at all: it is built under a temporary name and renamed into place.
- An existing folder is only reopened by a config with the same identity (config.identity); anything
  else is refused before a byte is written.
- A model's rows are written and flushed to disk before models.json marks it done; models.json is
  replaced atomically under a file lock, so processes writing different models never lose each other's
  records. Every array gets its disk blocks when it is created or opened for writing (writing.allocate),
  so a full disk is an error (one line, exit 2) and never a SIGBUS in the middle of a row.
- A model whose rows are not all finite (its query logits overflowed or training diverged) is never
  marked done: models.json records it as diverged, and the run reports it.
- A process claims the models it trains (claims.py), so two `train` processes on one folder never train
  the same model.

Reading: `load_run` opens and checks a run folder for the audit half; models.json is read by `read_models`
alone (the attack, the studies and `RunFolder` all go through it).
"""

import errno
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from lira_jax import config as config_lib
from lira_jax import promises
from lira_jax.arrays import load_array
from lira_jax.config import Config
from lira_jax.errors import UserError
from lira_jax.snapshots import epoch_folder
from lira_jax.writing import (
    allocate,
    check_disk_space,
    check_writable,
    disk_errors,
    folder_mode,
    make_folder,
    write_atomically,
)

MODELS_FILE = "models.json"


class RunFolder:
    """An open run folder; arrays are memmaps opened on demand."""

    def __init__(self, path: Path):
        self.path = path
        self._arrays: dict[str, np.memmap] = {}
        self._not_finite: set[int] = set()  # models with a non-finite row written by this process

    def array(self, name: str, mode: str = "r") -> np.ndarray:
        return np.load(self.path / f"{name}.npy", mmap_mode=mode)

    @property
    def keep(self) -> np.ndarray:
        return np.load(self.path / "keep.npy")

    def models(self) -> list[dict[str, Any]]:
        """Per-model records: {"index", "done", and for done models accuracies and timings; "diverged" for a
        model whose rows were not all finite}."""
        return read_models(self.path)

    def done(self) -> np.ndarray:
        """bool[M]: which models have finished and been written."""
        return np.array([record["done"] for record in self.models()], dtype=bool)

    def diverged(self) -> list[int]:
        """Models recorded as diverged (rows not all finite), not done."""
        models = self.models()  # a record's "index", where it has one, is its position (read_models)
        return [index for index, record in enumerate(models) if record.get("diverged") and not record["done"]]

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with disk_errors(self.path / ".lock"), open(self.path / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def write_rows(
        self,
        model_indices: np.ndarray,
        start: int,
        scores: np.ndarray,
        logits: np.ndarray | None,
        snapshot: int | None = None,
    ) -> None:
        """Writes examples start..start+B of some models' rows (not yet marked done), into the final arrays
        or those of epoch snapshot `snapshot` (epochs/E/).

        scores: float32[K, B, V]; logits: float[K, B, V, C] or None when the run keeps no logits.
        """
        stop = start + scores.shape[1]
        folder = f"epochs/{snapshot}/" if snapshot is not None else ""
        self._open(folder + "scores")[model_indices, start:stop] = scores
        finite = finite_rows(scores)
        if logits is not None:
            stored = self._open(folder + "logits")
            with np.errstate(over="ignore"):  # float16 overflow becomes inf, found just below
                logits = logits.astype(stored.dtype, copy=False)
            stored[model_indices, start:stop] = logits
            finite &= finite_rows(logits)
        if snapshot is None:
            self._not_finite.update(np.asarray(model_indices)[~finite].tolist())

    def flush(self) -> None:
        """Flushes every row written so far to disk."""
        for array in self._arrays.values():
            array.flush()
        self._arrays.clear()

    def mark_done(self, model_indices: Sequence[int], records: Sequence[dict[str, Any]]) -> list[int]:
        """Flushes the rows written so far to disk, then records the models as done (keeping what their
        records already held, such as their hyperparameters), except those with a non-finite row, which
        are recorded as diverged and not done. Returns the diverged ones."""
        self.flush()
        diverged = []
        with self._locked():
            models = self.models()
            for index, record in zip(model_indices, records, strict=True):
                index = int(index)
                old = {key: value for key, value in models[index].items() if key != "diverged"}
                if index in self._not_finite:
                    diverged.append(index)
                    models[index] = {**old, "index": index, "done": False, "diverged": True}
                else:
                    models[index] = {**old, "index": index, "done": True, **record}
            write_atomically(self.path / MODELS_FILE, json.dumps({"models": models}, indent=1))
        self._not_finite.difference_update(int(index) for index in model_indices)
        return diverged

    def _open(self, name: str) -> np.ndarray:
        if name not in self._arrays:
            path = self.path / f"{name}.npy"
            with disk_errors(path):
                allocate(path)  # a run created before blocks were allocated at creation
                self._arrays[name] = self.array(name, mode="r+")
        return self._arrays[name]


def finite_rows(rows: np.ndarray) -> np.ndarray:
    """bool[K]: whether row k of rows[K, ...] holds only finite values."""
    return np.isfinite(rows).reshape(len(rows), -1).all(axis=1)


def open_existing(path: str | Path) -> RunFolder:
    """Opens a run folder that must exist (for --status and slices)."""
    path = Path(path)
    if not (path / "config.toml").is_file() or not (path / MODELS_FILE).is_file():
        raise UserError(f"{path} is not a lira-jax run folder (no config.toml and models.json)")
    return RunFolder(path)


def check_resumable(path: Path, config: Config) -> RunFolder | None:
    """The existing run at `path` if `config` may resume it; None if there is none; else an error."""
    if not path.exists():
        return None
    if not path.is_dir():
        raise UserError(f"output {path} exists and is not a folder")
    with disk_errors(path):
        if not any(path.iterdir()):
            path.rmdir()
            return None
    run = open_existing(path)
    try:
        stored = config_lib.load(path / "config.toml")
    except UserError as error:
        raise UserError(f"{error}; refusing to touch the folder") from None
    ours, theirs = config_lib.identity(config), config_lib.identity(stored)
    if ours != theirs:
        changed = sorted(
            f"{section}.{key}"
            for section in ours
            for key in ours[section]
            if ours[section][key] != theirs[section].get(key)
        )
        raise UserError(
            f"{path} holds a run with a different config ({', '.join(changed)} differ); "
            "use another --out or the same config to resume"
        )
    promises.check_done_records(run.models(), run.keep, stored, path / MODELS_FILE)  # before any work
    return run


def array_shapes(config: Config, num_models: int, num_examples: int, num_views: int, num_classes: int) -> dict:
    """{name: (dtype, shape)} of the memmapped arrays of a run (each also under epochs/E/ per snapshot)."""
    shapes = {"scores": (np.dtype(np.float32), (num_models, num_examples, num_views))}
    if config.query.logits_dtype != "none":
        shapes["logits"] = (np.dtype(config.query.logits_dtype), (num_models, num_examples, num_views, num_classes))
    return shapes


def create(
    path: Path,
    config: Config,
    keep: np.ndarray,
    labels: np.ndarray,
    num_views: int,
    num_classes: int,
    records: Sequence[dict[str, Any]] | None = None,
    files: dict[str, str] | None = None,
) -> RunFolder:
    """Creates the run folder whole: arrays (scores and logits as memmaps with their disk blocks allocated,
    also under epochs/E/ for each of query.save_epochs), config, models.json with `records` (one dict
    per model) merged in, and `files` ({name: text}, e.g. recipe.json) beside them. A run that would not
    fit on the disk is refused before anything is written.

    If another process created `path` meanwhile (tasks of a job array started together), returns that run
    instead, after checking its config like a resume; its keep matrix is the same (same seed, same config).
    """
    num_models, num_examples = keep.shape
    make_folder(path.parent)
    check_writable(path.parent, f"the run folder {path}")  # before the free space, which /proc reports as 0
    shapes = array_shapes(config, num_models, num_examples, num_views, num_classes)
    check_disk_space(path.parent, shapes, 1 + len(config.query.save_epochs))
    with disk_errors(path.parent):
        building = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.partial-"))
    try:
        with disk_errors(path):
            os.chmod(building, folder_mode())
            np.save(building / "keep.npy", keep.astype(bool))
            np.save(building / "labels.npy", labels.astype(np.int32))
            folders = [building] + [building / "epochs" / str(epoch) for epoch in config.query.save_epochs]
            for folder in folders:
                folder.mkdir(parents=True, exist_ok=True)
                for name, (dtype, shape) in shapes.items():
                    array = np.lib.format.open_memmap(folder / f"{name}.npy", mode="w+", dtype=dtype, shape=shape)
                    array.flush()
                    del array
                    allocate(folder / f"{name}.npy")
            extra = records or [{} for _ in range(num_models)]
            models = [{"index": index, "done": False, **extra[index]} for index in range(num_models)]
            (building / MODELS_FILE).write_text(json.dumps({"models": models}, indent=1))
            (building / "config.toml").write_text(config_lib.to_toml(config))
            for name, content in (files or {}).items():
                (building / name).write_text(content)
        os.rename(building, path)
    except OSError as error:
        shutil.rmtree(building, ignore_errors=True)
        if error.errno not in (errno.EEXIST, errno.ENOTEMPTY):
            raise UserError(f"cannot create {path}: {error.strerror}") from None
        # Another process (a job-array task) created the run first: join it if its config is ours.
        return check_resumable(path, config)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return RunFolder(path)


# ---------------------------------------------------------------------------------------------------
# Reading a run folder (the audit half's side of the seam)


def read_models(run_dir: str | Path) -> list[dict[str, Any]]:
    """models.json's per-model records (each with a "done" key); UserError if it is unreadable or malformed."""
    path = Path(run_dir) / MODELS_FILE
    try:
        records = json.loads(path.read_text())["models"]
        if not isinstance(records, list) or not all(
            isinstance(record, dict) and isinstance(record.get("done"), bool) for record in records
        ):
            raise TypeError('every record must be an object with "done": true or false')
        misplaced = [position for position, record in enumerate(records) if record.get("index", position) != position]
        if misplaced:
            raise ValueError(f'record {misplaced[0]} has "index": {records[misplaced[0]]["index"]!r}')
    except RecursionError:  # json's decoder recurses once per level of nesting
        raise UserError(f"{path} is nested too deeply to be models.json (damaged or not ours)") from None
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
        raise UserError(f'{path} is not a JSON object with a list "models" of records with "done": {error}') from None
    return records


def done_models(records: list[dict[str, Any]] | None, num_models: int, path: Path) -> list[int]:
    """Indices of the models that may be used: those the records mark done, or all if there are none.

    path: models.json, for the message when the records do not list num_models models with boolean "done".
    """
    if records is None:
        return list(range(num_models))
    done = [record["done"] for record in records]
    if len(done) != num_models or not all(isinstance(flag, bool) for flag in done):
        raise UserError(
            f"{path} must list {num_models} models (keep.npy has {num_models}), each with a boolean "
            f'"done"; it lists {len(done)}'
        )
    return [index for index, flag in enumerate(done) if flag]


def load_run(run_dir: str | Path, epoch: int | None = None) -> dict[str, Any]:
    """Opens and checks a run folder's format: {keep bool[M, N], labels int[N], scores float32[M, N, V] or
    None, logits float16|32|64[M, N, V', C] or None, models: indices of the done models (at least 2),
    records: their models.json records (None without models.json), config: config.toml's Config (None
    without it), files: every file read, phi: where φ comes from (for metrics.json's "inputs")}.

    A folder of plain logits from elsewhere is read too: keep.npy may hold 0/1 integers, logits.npy may be
    [M, N, C] (one view: read as [M, N, 1, C]) or float64, any byte order. Where such a folder (no
    config.toml) has logits.npy, φ is computed from them as the audit reads them and written nowhere: a
    scores.npy beside them is not read (it could be stale). A run trained here keeps its scores.npy, which
    the audit checks against its logits (`lira_jax.audit.inputs.phi.checked_scores`).
    epoch: read scores.npy and logits.npy of that snapshot (RUN/epochs/E/); keep, labels, models.json and
    config.toml always come from RUN. The logits are checked against labels and scores by the audit's
    registry (`lira_jax.audit.registry.check_inputs`), where they are used. A run trained here must keep its
    own promises (`lira_jax.promises`): the logits its config keeps, the snapshot of `epoch` among its
    query.save_epochs, every done record complete.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir} is not a directory")
    keep = load_array(run_dir / "keep.npy", mmap=False)
    labels = load_array(run_dir / "labels.npy", mmap=False)
    arrays = epoch_folder(run_dir, epoch)
    trained = (run_dir / "config.toml").is_file()  # trained here: the trainer always writes scores.npy
    config = config_lib.load(run_dir / "config.toml") if trained else None
    if config is not None:
        promises.check_arrays(config, arrays, epoch)
    logits = load_array(arrays / "logits.npy", required=False)
    read_scores = logits is None or trained
    scores = load_array(arrays / "scores.npy", required=True) if read_scores else None
    if keep.ndim != 2 or not (keep.dtype == bool or (keep.dtype.kind in "iu" and np.isin(keep, (0, 1)).all())):
        raise UserError(f"keep.npy must be bool or 0/1 integers [M, N], got {keep.dtype}{list(keep.shape)}")
    keep = keep.astype(bool)
    num_models, num_examples = keep.shape
    if labels.dtype.kind not in "iu" or labels.shape != (num_examples,):
        hint = " (is keep.npy [N, M]? it must be [M, N], models first)" if labels.shape == (num_models,) else ""
        raise UserError(
            f"labels.npy must be integers [N] = [{num_examples}], got {labels.dtype}{list(labels.shape)}{hint}"
        )
    if scores is not None and (
        scores.dtype.newbyteorder("=") != np.float32 or scores.ndim != 3 or scores.shape[:2] != keep.shape
    ):
        raise UserError(
            f"scores.npy must be float32 [M, N, V] with [M, N] = {list(keep.shape)} from keep.npy, "
            f"got {scores.dtype}{list(scores.shape)}"
        )
    if logits is not None and logits.dtype.newbyteorder("=") not in (np.float16, np.float32, np.float64):
        raise UserError(f"logits.npy must be float16, float32 or float64, got {logits.dtype}")
    if logits is not None and logits.ndim == 3:
        logits = logits[:, :, None, :]
    if logits is not None and (logits.ndim != 4 or logits.shape[:2] != keep.shape):
        swapped = logits.shape[:2] == keep.shape[::-1]
        raise UserError(
            f"logits.npy must be [M, N, C] or [M, N, V, C] with [M, N] = {list(keep.shape)} from keep.npy, "
            f"got {list(logits.shape)}" + (" (examples first? save it with the models first)" if swapped else "")
        )
    if trained and not (run_dir / MODELS_FILE).is_file():
        raise UserError(
            f"{run_dir} was trained here (config.toml) but has no {MODELS_FILE}: which models finished is unknown,"
            " so it is not attacked (rerun the same train command to finish it)"
        )
    all_records = read_models(run_dir) if (run_dir / MODELS_FILE).is_file() else None
    models = done_models(all_records, num_models, run_dir / MODELS_FILE)
    if config is not None:
        promises.check_done_records(all_records, keep, config, run_dir / MODELS_FILE)
    if trained and len(models) < num_models:
        raise UserError(
            f"{run_dir} has {len(models)} of {num_models} models finished: an unfinished run is not attacked"
            " (rerun the same train command to finish it; `train --status` says which are missing)"
        )
    if len(models) < 2:
        raise UserError(
            f"at least 2 finished models are needed (one target, one shadow); {run_dir} has "
            f"{len(models)} of {num_models} done"
        )
    names = ["keep.npy", "labels.npy", MODELS_FILE, "config.toml"]
    files = [run_dir / name for name in names if (run_dir / name).is_file()]
    files += [arrays / f"{name}.npy" for name, array in (("logits", logits), ("scores", scores)) if array is not None]
    phi = "scores.npy" if scores is not None else "computed from logits.npy"
    if not read_scores and (arrays / "scores.npy").exists():
        phi += " (the scores.npy beside it is not read)"
    return {
        "keep": keep,
        "labels": labels,
        "scores": scores,
        "logits": logits,
        "models": models,
        "records": None if all_records is None else [all_records[model] for model in models],
        "config": config,
        "files": files,
        "phi": phi,
    }


def scores_shape(run: dict[str, Any]) -> tuple[int, int, int]:
    """[M, N, V] of a `load_run` result's scores, or of its logits when it has no scores.npy."""
    return tuple((run["logits"] if run["scores"] is None else run["scores"]).shape[:3])
