"""A target trained elsewhere (`attack RUN --target-model DIR`, `audit_logits(target_logits=, target_keep=)`):
scored against every model of the run as shadows, with exactly the numbers it gets as the run's last model."""

import json
from pathlib import Path

import numpy as np
import pytest
from hostile import fails_cleanly, snapshot
from run_folders import write_run

import lira_jax
from lira_jax import attack
from lira_jax.errors import UserError

FAST = "lira_online,lira_offline,rmia_online,rmia_offline,bavaria_t,base,loss,calibrated_loss,label_only"


def split_last_model(run: Path, root: Path) -> tuple[Path, Path]:
    """(a plain logits folder of all but the last model of `run`, a --target-model folder of the last)."""
    keep, labels, logits = (np.load(run / f"{name}.npy") for name in ("keep", "labels", "logits"))
    shadows, target = root / "shadows", root / "target"
    for folder, arrays in (
        (shadows, {"keep": keep[:-1], "labels": labels, "logits": logits[:-1]}),
        (target, {"keep": keep[-1], "logits": logits[-1]}),
    ):
        folder.mkdir()
        for name, array in arrays.items():
            np.save(folder / f"{name}.npy", array)
    return shadows, target


def outputs(folder: Path) -> tuple[dict, bytes, bytes]:
    """metrics.json without what names the invocation and the files read, metrics.csv and examples.csv
    without the invocation id."""
    metrics = json.loads((folder / "metrics.json").read_text())
    invocation = metrics.pop("invocation").encode()
    for key in ("seconds", "inputs"):
        metrics.pop(key)
    csvs = ((folder / name).read_bytes().replace(invocation, b"") for name in ("metrics.csv", "examples.csv"))
    return metrics, *csvs


def test_target_model_scores_as_the_runs_last_model(tmp_path, capsys):
    run = write_run(tmp_path / "run", num_models=8, num_examples=200)
    shadows, target = split_last_model(run, tmp_path)
    whole = tmp_path / "whole"
    whole.mkdir()
    argv = ["--attacks", FAST, "--mask", "top:3"]
    assert attack.main([str(run), "--targets", "7", "--json", str(whole / "metrics.json"), *argv]) == 0
    assert attack.main([str(shadows), "--target-model", str(target), *argv]) == 0  # writes into DIR
    expected, got = outputs(whole), outputs(target)
    assert got == expected and got[0]["targets"] == [7] and got[0]["num_models"] == 8
    assert got[0]["attacks"]["lira_online"]["auc"] > 0.6
    assert "--target-model" in capsys.readouterr().out


def test_target_model_of_a_trained_run(tiny_run, tmp_path, capsys):
    """A trained run (scores.npy, models.json) as the shadows: its memmapped φ with the target's appended."""
    keep, logits = np.load(tiny_run / "keep.npy"), np.load(tiny_run / "logits.npy")
    target = tmp_path / "target"
    target.mkdir()
    np.save(target / "keep.npy", keep[3])
    np.save(target / "logits.npy", logits[3, :, 0])  # one view: the run has two
    fails_cleanly(attack.main, [tiny_run, "--target-model", target], "V = 2 views", capsys)
    np.save(target / "logits.npy", logits[3])
    assert attack.main([str(tiny_run), "--target-model", str(target), "--attacks", "rmia_online,loss"]) == 0
    metrics = json.loads((target / "metrics.json").read_text())
    assert metrics["targets"] == [4] and metrics["num_models"] == 5
    assert [Path(file).name for file in metrics["inputs"]["files"]][-2:] == ["logits.npy", "keep.npy"]


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda keep, logits: (keep, logits[:-1]), r"must be \[N, C\] or \[N, V, C\] with N = 200"),
        (lambda keep, logits: (keep[:-1], logits), r"keep.npy must be bool or 0/1 integers \[N\] = \[200\]"),
        (lambda keep, logits: (keep, logits[..., :3]), "has 3 classes, the shadow models 5"),
        (
            lambda keep, logits: (keep, np.where(np.arange(200)[:, None, None] == 9, np.nan, logits)),
            r"NaN .* \[9, 0, 0\]",
        ),
        (lambda keep, logits: (np.zeros_like(keep), logits), "some examples as members and some not, got 0 of 200"),
        (lambda keep, logits: (keep, logits.astype(np.int32)), "must be float16, float32 or float64"),
    ],
)
def test_bad_target_model_is_one_error_line(tmp_path, capsys, change, message):
    run = write_run(tmp_path / "run", num_models=5, num_examples=200)
    shadows, target = split_last_model(run, tmp_path)
    keep, logits = change(np.load(target / "keep.npy"), np.load(target / "logits.npy"))
    np.save(target / "keep.npy", keep)
    np.save(target / "logits.npy", logits)
    before = snapshot(tmp_path)
    fails_cleanly(attack.main, [shadows, "--target-model", target], message, capsys)
    fails_cleanly(attack.main, [shadows, "--target-model", target, "--targets", "1"], "with --target-model", capsys)
    fails_cleanly(attack.main, [shadows, "--target-model", tmp_path / "none"], "is not a directory", capsys)
    assert snapshot(tmp_path) == before


def test_audit_logits_with_a_target_model(tmp_path):
    run = write_run(tmp_path / "run", num_models=6, num_examples=150)
    keep, labels, logits = (np.load(run / f"{name}.npy") for name in ("keep", "labels", "logits"))
    attacks = FAST.split(",")
    whole = lira_jax.audit_logits(logits, keep, labels, attacks=attacks, targets=[5], views=[1])
    alone = lira_jax.audit_logits(
        logits[:5], keep[:5], labels, attacks=attacks, views=[1], target_logits=logits[5], target_keep=keep[5]
    )
    for audit in (whole, alone):
        audit.metrics.pop("invocation")
    assert alone.metrics == whole.metrics
    for key, column in whole.examples.items():
        assert np.array_equal(alone.examples[key], column, equal_nan=column.dtype.kind == "f"), key
    with pytest.raises(UserError, match="targets must be 'all' with target_logits"):
        lira_jax.audit_logits(
            logits[:5], keep[:5], labels, targets="last", target_logits=logits[5], target_keep=keep[5]
        )
    with pytest.raises(UserError, match="target_keep is None"):
        lira_jax.audit_logits(logits[:5], keep[:5], labels, target_logits=logits[5])
