"""Output paths of `attack` and `study`, checked together before anything is computed or written, and the
invocation id that marks the outputs of one command as one set.

No output may replace an input or another output (DESIGN.md, "Command line"): `refuse_outputs` refuses (a
UserError: one line, exit 2) every output path that resolves, through symlinks, `..` or a hard link, to a
file the command reads or a run's own file (arrays, config.toml, models.json, snapshots), that lies in a
folder no output may enter (a run's checkpoints, a reference model's folder), that names the same file as
another output, or that exists and is not a regular file (a folder, a device, a pipe). Root or not: the
checks never rely on permissions, and each output's folder is shown writable by creating (and removing) a
file in it, so that a folder no file can be written to (read-only, under /proc or /sys) is refused before
anything is computed. Figures must end in a suffix matplotlib writes (FIGURE_SUFFIXES).
"""

from __future__ import annotations

import os
import secrets
import stat
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lira_jax.errors import UserError
from lira_jax.store import MODELS_FILE
from lira_jax.writing import check_writable

RUN_FILES = ("config.toml", "keep.npy", "labels.npy", "scores.npy", "logits.npy", MODELS_FILE, ".claims", ".lock")
FIGURE_SUFFIXES = (".png", ".pdf", ".svg")  # each written with the invocation id in its metadata


@dataclass
class Protected:
    """What no output may touch: files {path as given: what it is} (read by the command, or a run's own)
    and folders {path: what it is} that no output may lie in."""

    files: dict[Path, str] = field(default_factory=dict)
    folders: dict[Path, str] = field(default_factory=dict)

    def add_files(self, paths: Iterable[str | Path], what: str) -> Protected:
        self.files.update({Path(path): what for path in paths})
        return self

    def add_run(self, run_dir: str | Path) -> Protected:
        """A run folder's own files (RUN_FILES, also in each epochs/E/) and its checkpoints."""
        run_dir = Path(run_dir)
        folders = [run_dir, *sorted(run_dir.glob("epochs/*"))]
        self.add_files([folder / name for folder in folders for name in RUN_FILES], f"a file of the run {run_dir}")
        self.folders[run_dir / "checkpoints"] = f"the checkpoints of the run {run_dir}"
        return self


def refuse_outputs(
    outputs: Mapping[str, str | Path | None], protected: Protected, *, parents_exist: bool = True
) -> None:
    """UserError for the first output {what: path} (None: not written) that would replace a protected file,
    lie in a protected folder, name the same file as another output, or is not a regular file or a new path.
    what: how the message names the output, e.g. "--json"; parents_exist: each output's folder must exist
    already (False: the command creates it)."""
    resolved_files = {_resolved(path): (path, what) for path, what in protected.files.items()}
    inodes = {_inode(path): (path, what) for path, what in protected.files.items()}
    inodes.pop(None, None)
    folders = {_resolved(folder): what for folder, what in protected.folders.items()}
    seen: dict[object, tuple[str, Path]] = {}
    for option, path in outputs.items():
        if path is None:
            continue
        path = Path(path)
        target = _resolved(path)
        if target in resolved_files:
            source, what = resolved_files[target]
            raise UserError(f"{option} {path} is {target}, {what}: refusing to overwrite it")
        inode = _inode(path)
        if inode in inodes:
            source, what = inodes[inode]
            raise UserError(f"{option} {path} is a link to {source}, {what}: refusing to overwrite it")
        for folder, what in folders.items():
            if target.is_relative_to(folder):
                raise UserError(f"{option} {path} lies in {what}: refusing to write there")
        for key in (target, inode):
            if key is not None and key in seen:
                other, other_path = seen[key]
                raise UserError(
                    f"{option} {path} and {other} {other_path} are the same file: each output needs its own path"
                )
            if key is not None:
                seen[key] = (option, path)
        _refuse_kind(option, path, parents_exist)
    for option, path in outputs.items():
        if path is not None:
            _refuse_unwritable(option, Path(path))


def refuse_run_files(path: str | Path, run_dirs: Sequence[str | Path], what: str) -> None:
    """`refuse_outputs` for one output path against the runs' own files and checkpoints (the studies)."""
    protected = Protected()
    for run_dir in run_dirs:
        protected.add_run(run_dir)
    refuse_outputs({what: path}, protected, parents_exist=False)


def check_figure_path(path: str | Path, what: str) -> None:
    """UserError unless the figure's file name ends in one of FIGURE_SUFFIXES (any case)."""
    if Path(path).suffix.lower() not in FIGURE_SUFFIXES:
        raise UserError(f"{what} {path} must end in {', '.join(FIGURE_SUFFIXES)} (the figure's format)")


def invocation_id() -> str:
    """A new id for the outputs of one command (UTC time and 8 random hex digits), e.g. 20261205T101112Z-3f9a1c2b:
    written into each output, so that files of two invocations side by side (after a kill) are told apart."""
    return f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{secrets.token_hex(4)}"


def _refuse_kind(option: str, path: Path, parent_exists: bool) -> None:
    """UserError unless path is new (or a dangling link) or an existing regular file (in an existing folder)."""
    if parent_exists and not path.parent.is_dir():
        raise UserError(f"cannot write {option} {path}: {path.parent} is not a directory")
    try:
        mode = os.stat(path).st_mode  # through symlinks
    except FileNotFoundError:
        return
    except OSError as error:
        raise UserError(f"cannot write {option} {path}: {error.strerror}") from None
    if stat.S_ISDIR(mode):
        raise UserError(f"{option} {path} is a folder; give a file name")
    if not stat.S_ISREG(mode):
        raise UserError(f"{option} {path} is not a regular file (a device, pipe or socket): refusing to write there")


def _refuse_unwritable(option: str, path: Path) -> None:
    """UserError unless a file can be created in the folder of path, or, where that folder is still to be
    made, in its nearest existing ancestor (`writing.check_writable`)."""
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise UserError(f"cannot write {option} {path}: {folder} is not a directory")
    check_writable(folder, f"{option} {path}", path if folder == path.parent else None)


def _resolved(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _inode(path: Path) -> tuple[int, int] | None:
    try:
        found = os.stat(path)
    except OSError:
        return None
    return (found.st_dev, found.st_ino)
