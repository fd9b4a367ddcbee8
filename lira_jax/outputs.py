"""Output paths of `attack` and `study`: never one of a run's own files.

Only the trainer writes a run's arrays, config.toml, models.json, snapshots and checkpoints (DESIGN.md, "The
run folder"); an output path of another command that names one of them, directly, through a symlink, a
`..` or a hard link, is refused before anything is computed or written.
"""

import os
from collections.abc import Sequence
from pathlib import Path

from lira_jax.errors import UserError
from lira_jax.store import MODELS_FILE

RUN_FILES = ("config.toml", "keep.npy", "labels.npy", "scores.npy", "logits.npy", MODELS_FILE, ".claims", ".lock")


def refuse_run_files(path: str | Path, run_dirs: Sequence[str | Path], what: str) -> None:
    """UserError if the output `path` (symlinks and .. resolved, hard links compared) would overwrite a file
    of one of the runs (arrays, config.toml, models.json, snapshots, checkpoints) or is a folder.
    what: the option, e.g. "--json", for the message."""
    target = Path(path).resolve()
    if target.is_dir():
        raise UserError(f"{what} {path} is a folder; give a file name")
    for run_dir in run_dirs:
        root = Path(run_dir).resolve()
        if not target.is_relative_to(root):
            continue
        parts = target.relative_to(root).parts
        if parts and parts[0] == "checkpoints":
            raise UserError(f"{what} {path} lies in the checkpoints of the run {run_dir}: refusing to write there")
        if parts and parts[-1] in RUN_FILES and (len(parts) == 1 or parts[0] == "epochs"):
            raise UserError(f"{what} {path} is {target}, a file of the run {run_dir}: refusing to overwrite it")
    if target.exists():
        for run_dir in run_dirs:
            for name in RUN_FILES:
                if (Path(run_dir) / name).exists() and os.path.samefile(target, Path(run_dir) / name):
                    raise UserError(f"{what} {path} is a link to {Path(run_dir) / name}: refusing to overwrite it")
