"""A trained run's own promises, checked before it is attacked: what its config.toml says was written must be
there, and what a done record always carries must be in it (docs/run_folder.md).

- Logits: a run whose config keeps logits (query.logits_dtype float16 or float32) has logits.npy, and so has
  each epoch snapshot. Without them scores.npy could not be checked against the logits and the attacks on
  logits would be dropped silently, so a missing one is refused, naming the file (`refuse_missing_logits`).
- Snapshots: epochs/E/ is that epoch only if E is one of the config's query.save_epochs and every done
  model records its accuracies at E; anything else is a stale or foreign folder (`check_epoch`).
- Done records: the trainer writes each finished model's accuracies, members and timings with "done":
  true, so a record marked done without them (edited, or never trained) is refused, naming the model and
  the field (`check_done_records`).
"""

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lira_jax.config import Config
from lira_jax.errors import UserError


def _fraction(value: Any) -> bool:
    return _number(value) and 0 <= value <= 1


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0


# What every done record carries (the trainer writes all of them at once): {field: (valid?, what it must be)}.
DONE_FIELDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "train_accuracy": (_fraction, "a number in [0, 1]"),
    "test_accuracy": (lambda value: value is None or _fraction(value), "a number in [0, 1] or null"),
    "members": (lambda value: isinstance(value, int) and not isinstance(value, bool) and value >= 0, "a count"),
    "chunk_seconds": (_number, "a non-negative number"),
    "train_seconds": (_number, "a non-negative number"),
}


def check_arrays(config: Config, arrays: Path, epoch: int | None) -> None:
    """The arrays in `arrays` (the run folder, or epoch E's snapshot folder) are what `config` promises
    (`check_epoch`, `refuse_missing_logits`)."""
    if epoch is not None:
        check_epoch(config, epoch, arrays)
    refuse_missing_logits(config, arrays)


def refuse_missing_logits(config: Config, folder: Path) -> None:
    """UserError if `config` keeps logits but folder (the run or one of its epochs/E/) has no logits.npy."""
    if config.query.logits_dtype == "none" or (folder / "logits.npy").exists():
        return
    raise UserError(
        f"{folder / 'logits.npy'} is missing, but the run's config keeps logits (query.logits_dtype ="
        f" {config.query.logits_dtype}): without it scores.npy cannot be checked and the attacks on logits would"
        " be dropped; restore it, or attack a folder holding only its keep.npy, labels.npy and scores.npy (a"
        " folder from elsewhere: φ taken as it is, the attacks on logits left out)"
    )


def check_epoch(config: Config, epoch: int, folder: Path) -> None:
    """UserError unless `epoch` (its snapshot folder: folder) is one of the config's query.save_epochs (the
    snapshots the trainer writes)."""
    if epoch not in config.query.save_epochs:
        saved = ", ".join(map(str, config.query.save_epochs)) or "none"
        raise UserError(
            f"{folder} is not a snapshot of this run: its config saves epochs {saved}"
            " (query.save_epochs), so the folder is stale or was put there by hand and is not attacked as epoch"
            f" {epoch}"
        )


def check_done_records(records: Sequence[dict[str, Any]], keep: np.ndarray, config: Config, path: Path) -> None:
    """UserError naming the first done model (records: models.json's, in index order; keep: bool[M, N]) whose
    record lacks a field of DONE_FIELDS or of one of the config's snapshots, holds a wrong one, or counts
    members other than keep.npy does. path: models.json, for the message."""
    for index, record in enumerate(records):
        if not record["done"]:
            continue
        problem = _record_problem(record, int(keep[index].sum()), config.query.save_epochs)
        if problem is not None:
            raise UserError(
                f"{path}: model {index} is marked done but {problem}, which every finished model records: the"
                ' record was edited or damaged; set its "done" to false and rerun the same train command to'
                " train it again"
            )


def _record_problem(record: dict[str, Any], members: int, save_epochs: Sequence[int]) -> str | None:
    """What is wrong with one done record, or None."""
    for name, (valid, what) in DONE_FIELDS.items():
        if name not in record:
            return f'its record has no "{name}"'
        if not valid(record[name]):
            return f'its "{name}" is {record[name]!r}, not {what}'
    if record["members"] != members:
        return f'its "members" is {record["members"]}, not the {members} that keep.npy gives it'
    snapshots = record.get("epochs")
    for epoch in save_epochs:
        if not isinstance(snapshots, dict) or not isinstance(snapshots.get(str(epoch)), dict):
            return f'its record has no "epochs" entry for the snapshot at epoch {epoch}'
    return None
