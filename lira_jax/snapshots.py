"""A run's epoch snapshot folders, RUN/epochs/E/ for each E of query.save_epochs (docs/run_folder.md): which
epochs were saved and where each one's arrays lie. A folder spelled with a leading zero (epochs/02) is
epoch 2, as the user would read it; two spellings of one epoch are refused rather than one chosen."""

from pathlib import Path

from lira_jax.errors import UserError


def saved_epochs(run_dir: str | Path) -> list[int]:
    """The epochs E with a snapshot folder RUN/epochs/E/ (E in decimal digits, 02 read as 2), increasing."""
    return sorted(_epoch_folders(Path(run_dir)))


def _epoch_folders(run_dir: Path) -> dict[int, list[Path]]:
    folder = run_dir / "epochs"
    found: dict[int, list[Path]] = {}
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if path.is_dir() and path.name.isdecimal():
            found.setdefault(int(path.name), []).append(path)
    return found


def epoch_folder(run_dir: str | Path, epoch: int | None) -> Path:
    """Where the arrays of `epoch` lie: RUN itself (None: the final models) or RUN/epochs/E, as the folder is
    spelled (epochs/02 for epoch 2); two spellings of one epoch are refused."""
    run_dir = Path(run_dir)
    if epoch is None:
        return run_dir
    folders = _epoch_folders(run_dir)
    if epoch not in folders:
        listed = ", ".join(map(str, sorted(folders))) or "none (set query.save_epochs when training)"
        raise UserError(f"epoch {epoch} was not saved in {run_dir}; saved epochs: {listed}")
    if len(folders[epoch]) > 1:
        raise UserError(f"{' and '.join(map(str, folders[epoch]))} both name epoch {epoch}: keep one of them")
    return folders[epoch][0]
