"""End to end: `python -m lira_jax.train` on a tiny digits config, its run folder, resume, and bad input."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_RUN, tiny_settings

from lira_jax.train import main

TINY = [*tiny_settings(), "--quiet"]


def test_run_folder_has_the_design_layout(tiny_run):
    keep = np.load(tiny_run / "keep.npy")
    labels = np.load(tiny_run / "labels.npy")
    scores = np.load(tiny_run / "scores.npy", mmap_mode="r")
    logits = np.load(tiny_run / "logits.npy", mmap_mode="r")
    assert keep.dtype == bool and keep.shape == (4, 200) and (keep.sum(axis=0) == 2).all()
    assert labels.dtype == np.int32 and labels.shape == (200,)
    assert scores.dtype == np.float32 and scores.shape == (4, 200, 2)
    assert logits.dtype == np.float32 and logits.shape == (4, 200, 2, 10)
    assert np.isfinite(scores).all()
    models = json.loads((tiny_run / "models.json").read_text())["models"]
    assert all(record["done"] and 0 <= record["train_accuracy"] <= 1 for record in models)
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    assert metrics["num_models"] == 4 and metrics["num_views"] == 2
    assert {
        "lira_online",
        "lira_offline",
        "lira_online_fixed_var",
        "lira_offline_fixed_var",
        "global_threshold",
    } <= set(metrics["attacks"])
    assert (tiny_run / "roc.png").stat().st_size > 0


def test_rerun_resumes_without_retraining(tiny_run, tmp_path, capsys):
    run = shutil.copytree(tiny_run, tmp_path / "run")
    before = (run / "scores.npy").stat().st_mtime_ns
    assert main(["--out", str(run), *TINY_RUN, "--quiet", "--no-attack"]) == 0
    assert (run / "scores.npy").stat().st_mtime_ns == before
    assert "4 of 4 models done" in capsys.readouterr().out


def test_slices_add_up_to_the_whole_run(tiny_run, tmp_path):
    out = tmp_path / "sliced"
    assert main(["--out", str(out), *TINY_RUN, "--quiet", "--models", "1:3", "--no-attack"]) == 0
    assert [record["done"] for record in json.loads((out / "models.json").read_text())["models"]] == [
        False,
        True,
        True,
        False,
    ]
    assert main(["--out", str(out), *TINY_RUN, "--quiet", "--no-attack"]) == 0
    np.testing.assert_allclose(np.load(out / "scores.npy"), np.load(tiny_run / "scores.npy"), rtol=1e-4, atol=1e-4)


def test_status(tiny_run, capsys):
    assert main(["--status", str(tiny_run)]) == 0
    assert "4 of 4 models done" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--set", "train.bogus=1"], "unknown config key train.bogus"),
        (["--set", "train.epochs=many"], "train.epochs must be a int"),
        (["--set", "data.source=imagenet"], "imagenet"),
        (["--set", "data.source=idx:/nonexistent"], "train-images-idx3-ubyte"),
        (["--config", "/nonexistent.toml"], "does not exist"),
        (["--set", "train.num_models=1"], "train.num_models must be an integer in [2,"),
        (["--models", "3:9"], "outside"),
        (["--set", "train.augment=['blur']"], "blur"),
        (["--set", "query.views=['shift:9,0']"], "shift"),
        (["--bogus-flag"], "unrecognized arguments"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, arguments, message):
    out = tmp_path / "run"
    assert main(["--out", str(out), *TINY, *arguments]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error:") and "\n" not in error and "Traceback" not in error
    assert message in error
    assert not out.exists()


def test_broken_config_file(tmp_path, capsys):
    config = tmp_path / "broken.toml"
    config.write_text("[train]\nepochs = ")
    assert main(["--config", str(config), "--out", str(tmp_path / "run")]) == 2
    assert "not valid TOML" in capsys.readouterr().err


def test_a_different_config_is_refused_and_nothing_touched(tiny_run, tmp_path, capsys):
    run = shutil.copytree(tiny_run, tmp_path / "run")
    files = {path.name: path.stat().st_mtime_ns for path in run.iterdir()}
    assert main(["--out", str(run), *TINY_RUN, "--quiet", "--set", "train.epochs=3"]) == 2
    assert "different config (train.epochs differ)" in capsys.readouterr().err
    assert {path.name: path.stat().st_mtime_ns for path in run.iterdir()} == files


def test_command_line_exit_status(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "lira_jax.train", "--out", str(tmp_path / "run"), "--set", "train.nope=1"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parent,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "unknown config key" in result.stderr
