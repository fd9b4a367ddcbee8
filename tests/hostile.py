"""What the hostile suites share: tiny inputs in each layout the attack reads (no training: arrays written
directly, in milliseconds), a snapshot of a folder, and the check that a command failed cleanly (exit 2,
one `error:` line, no traceback, no warning before it)."""

import dataclasses
import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
from run_folders import trained_records, write_port, write_reference, write_run

from lira_jax import config as config_lib

LAYOUTS = ("run", "plain", "reference", "port")
FAST = ["--attacks", "lira_offline_fixed_var,global_threshold"]  # cheap attacks where a case computes
M, N, V, C = 6, 40, 2, 3  # models, examples, views, classes of every tiny input


def snapshot(folder: Path) -> dict[str, object]:
    """Every path under `folder`: a file's content digest, inode and mtime, a link's target, a folder's presence."""
    found = {}
    for path in sorted(folder.rglob("*")):
        name = str(path.relative_to(folder))
        if path.is_symlink():
            found[name] = ("link", os.readlink(path))
        elif path.is_file():
            status = path.stat()
            found[name] = ("file", hashlib.sha256(path.read_bytes()).hexdigest(), status.st_ino, status.st_mtime_ns)
        else:
            found[name] = ("other", path.is_dir())
    return found


def fails_cleanly(main, argv, message: str, capsys) -> None:
    """main(argv) exits 2 with one `error:` line matching `message` on stderr, nothing else, no traceback."""
    assert main([str(part) for part in argv]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert "Traceback" not in captured.err + captured.out
    assert re.search(message, lines[0]), lines[0]


def refused(root: Path, main, argv, message: str, capsys) -> None:
    """`fails_cleanly`, and nothing under root changed (inputs, links, outputs)."""
    before = snapshot(root)
    fails_cleanly(main, argv, message, capsys)
    assert snapshot(root) == before


def skip_drawing(monkeypatch) -> None:
    """Figures saved as empty files (written as the real ones are, atomically, in the output set): for the
    cases that check numbers, where drawing (most of a tiny attack's time) proves nothing."""
    from lira_jax.audit.report import plots
    from lira_jax.writing import write_atomically

    def save_nothing(figure, path, dpi=150, note=None):
        plots.plt.close(figure)
        write_atomically(Path(path), b"")

    monkeypatch.setattr(plots, "save_figure", save_nothing)


def write_trained(folder: Path, **options) -> Path:
    """A run folder as the trainer leaves it (config.toml, models.json all done, an epoch snapshot, a
    checkpoints folder, .claims), its scores.npy φ of its logits.npy."""
    write_run(folder, num_models=M, num_examples=N, num_views=V, num_classes=C, **options)
    config = config_lib.Config()
    config = dataclasses.replace(config, query=dataclasses.replace(config.query, save_epochs=(1,)))
    (folder / "config.toml").write_text(config_lib.to_toml(config))
    records = trained_records(np.load(folder / "keep.npy"), save_epochs=(1,))
    (folder / "models.json").write_text(json.dumps({"models": records}))
    (folder / "epochs" / "1").mkdir(parents=True)
    for name in ("scores.npy", "logits.npy"):
        shutil.copy(folder / name, folder / "epochs" / "1" / name)
    (folder / "checkpoints").mkdir()
    (folder / ".claims").write_text("{}")
    return folder


def tiny_arrays(seed: int = 0, num_models: int = M) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(logits float32[M, N, V, C], keep bool[M, N] balanced, labels int64[N]) with a membership signal."""
    rng = np.random.default_rng(seed)
    keep = np.argsort(rng.random((num_models, N)), axis=0) < num_models // 2
    labels = rng.integers(0, C, N)
    logits = rng.normal(size=(num_models, N, V, C))
    logits[:, np.arange(N), :, labels] += (1.0 + 2.0 * keep).T[:, :, None]
    return logits.astype(np.float32), keep, labels


def make_input(root: Path, layout: str) -> tuple[Path, list]:
    """A tiny input of `layout` under root, and the attack's arguments that read it (before the options)."""
    logits, keep, labels = tiny_arrays()
    if layout == "run":
        return write_trained(root / "run"), [root / "run"]
    if layout == "plain":
        folder = root / "plain"
        folder.mkdir(parents=True)
        for name, array in (("logits", logits), ("keep", keep), ("labels", labels)):
            np.save(folder / f"{name}.npy", array)
        return folder, [folder]
    if layout == "reference":
        write_reference(root / "exp", keep, logits, labels)
        return root / "exp", [root / "exp", "--format", "lira-reference"]
    write_port(root / "port", keep, logits, labels)
    np.save(root / "labels.npy", labels)
    return root / "port", [root / "port", "--format", "lira-reference", "--labels", root / "labels.npy"]


def input_files(layout: str) -> list[str]:
    """Files of each layout (relative to make_input's root) that the attack reads or that are the run's own."""
    model, last = f"experiment-0_{M}", "0000000020"
    return {
        "run": ["run/keep.npy", "run/labels.npy", "run/logits.npy", "run/scores.npy", "run/models.json",
                "run/config.toml", "run/epochs/1/logits.npy", "run/.claims"],
        "plain": ["plain/keep.npy", "plain/labels.npy", "plain/logits.npy"],
        "reference": [f"exp/{model}/keep.npy", f"exp/{model}/logits/{last}.npy", f"exp/{model}/scores/{last}.npy",
                      "exp/y_train.npy", "exp/x_train.npy"],
        "port": ["port/0/keep.npy", "port/0/logits.npy", "port/3/scores.npy", "labels.npy"],
    }[layout]  # fmt: skip


def model_folder(files: list[str]) -> str | None:
    """A folder no output may enter (a run's checkpoints, a model's folder) of the layout whose
    `input_files` are `files`, relative to make_input's root; None for a folder of plain logits."""
    top = files[0].split("/")[0]
    return {"run": "run/checkpoints", "plain": None, "exp": f"exp/experiment-1_{M}", "port": "port/2"}[top]


def metrics_of(path: Path) -> dict:
    return json.loads(path.read_text())


def resave(path: Path, change) -> None:
    """Rewrites the .npy at path as change(its array)."""
    np.save(path, change(np.load(path)))


def experiment(root: Path, model: int = 2) -> Path:
    """The reference layout's folder of `model` under make_input's exp/."""
    return root / f"experiment-{model}_{M}"


def only_scores(folder: Path) -> None:
    """A reference experiment folder without its logits (as if score.py had run and they were deleted)."""
    shutil.rmtree(folder / "logits")
