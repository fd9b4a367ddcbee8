"""Inputs that are unusual but right, on the command line: any byte order, a stale scores.npy beside the
logits, unpadded and stray epoch files, reference folders without logits or behind the others, a folder
grouping experiment folders, x_train.npy that is not pictures, float16 logits near 65,504. Each gives the
numbers of the clean input (through the API, which equals the command line on a clean folder), without a
warning, and says what it read. The refusals are in test_hostile_inputs.py. Figures are not drawn here
(hostile.skip_drawing): the numbers are the point."""

import functools
import shutil
import warnings

import numpy as np
import pytest
from hostile import M, N, experiment, make_input, metrics_of, only_scores, resave, skip_drawing, tiny_arrays

from lira_jax import attack, audit_logits
from lira_jax.audit.inputs.phi import logit_scale
from lira_jax.audit.inputs.readers import read_lira_reference


@pytest.fixture(autouse=True)
def _no_drawing(monkeypatch):
    skip_drawing(monkeypatch)


ON_SCORES = "lira_online_fixed_var,lira_offline,rmia_online,rmia_offline,loss,global_threshold"
ATTACKS = f"{ON_SCORES},entropy,modified_entropy"


def _aucs(arguments, capsys, json_path, attacks=ATTACKS):
    """{attack: AUC} of the attack on `arguments` (warnings are errors: none may precede any line), and
    what it printed."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        code = attack.main([str(part) for part in [*arguments, "--attacks", attacks, "--json", json_path]])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return {name: values["auc"] for name, values in metrics_of(json_path)["attacks"].items()}, captured.out


@functools.cache
def _clean(attacks=ATTACKS):
    """{attack: AUC} of the tiny arrays every layout of make_input holds, through the API (the same numbers
    as the command line on a clean folder: tests/audit/test_api.py), without drawing a figure."""
    logits, keep, labels = tiny_arrays()
    metrics = audit_logits(logits, keep, labels, attacks=attacks).metrics
    return {name: values["auc"] for name, values in metrics["attacks"].items()}


def test_plain_folder_in_any_byte_order_with_a_stale_scores_npy(tmp_path, capsys):
    folder, arguments = make_input(tmp_path, "plain")
    for name in ("logits", "keep", "labels"):
        resave(folder / f"{name}.npy", lambda a: a.astype(a.dtype.newbyteorder(">")))
    np.save(folder / "scores.npy", np.zeros((M, N, 2), np.float32))  # stale: φ comes from the logits
    found, printed = _aucs(arguments, capsys, tmp_path / "swapped.json")
    assert found == _clean() and "the scores.npy beside it is not read" in printed
    assert metrics_of(tmp_path / "swapped.json")["inputs"]["phi"].startswith("computed from logits.npy")


def test_scores_only_in_big_endian(tmp_path, capsys):
    folder, arguments = make_input(tmp_path, "plain")
    logits, labels = np.load(folder / "logits.npy"), np.load(folder / "labels.npy")
    np.save(folder / "scores.npy", logit_scale(logits, labels).astype(">f4"))
    (folder / "logits.npy").unlink()
    assert _aucs(arguments, capsys, tmp_path / "swapped.json", ON_SCORES)[0] == _clean(ON_SCORES)


def test_reference_epochs_by_number_and_stray_files(tmp_path, capsys):
    """Unpadded epoch names (10 after 9), a backup file, a non-.npy file and a folder named like an epoch:
    the last epoch by number is read, nothing else, and metrics.json lists it."""
    root, arguments = make_input(tmp_path, "reference")
    for model in range(M):
        epochs = experiment(root, model) / "logits"
        last = np.load(epochs / "0000000020.npy")
        shutil.rmtree(epochs)
        shutil.rmtree(experiment(root, model) / "scores")
        epochs.mkdir()
        np.save(epochs / "9.npy", last + 100)
        np.save(epochs / "10.npy", last)
        np.save(epochs / "backup.npy", last - 100)
        np.save(epochs / "11.npy.bak", last - 50)
        (epochs / "12.npy").mkdir()
    found, _ = _aucs(arguments, capsys, tmp_path / "renamed.json")
    assert found == _clean()
    files = metrics_of(tmp_path / "renamed.json")["inputs"]["files"]
    assert sum(file.endswith("/logits/10.npy") for file in files) == M and not any("9.npy" in f for f in files)


def test_reference_folders_without_logits_or_behind_are_named(tmp_path, capsys):
    root, arguments = make_input(tmp_path, "reference")
    only_scores(experiment(root, 2))
    for kind in ("logits", "scores"):
        (experiment(root, 4) / kind / "0000000020.npy").unlink()
    _, printed = _aucs(arguments, capsys, tmp_path / "m.json", ON_SCORES)
    notes = metrics_of(tmp_path / "m.json")["inputs"]["notes"]
    assert any(f"experiment-2_{M}" in note and "no logits" in note for note in notes), notes
    assert any(f"experiment-4_{M} (0000000010)" in note for note in notes), notes
    assert "φ: each model's scores/E.npy" in printed and all(f"note: {note}" in printed for note in notes)


def test_a_folder_grouping_experiments_is_not_one(tmp_path):
    root, _ = make_input(tmp_path / "exp2" / "experiments", "reference")
    read = read_lira_reference(tmp_path / "exp2")
    assert read.models == [f"experiments/exp/experiment-{model}_{M}" for model in range(M)]
    np.testing.assert_array_equal(read.logits, tiny_arrays()[0])


def test_inputs_that_are_not_pictures_are_left_out_of_the_report(tmp_path, capsys):
    root, arguments = make_input(tmp_path, "reference")
    np.save(root / "x_train.npy", np.zeros((N, 7), np.float32))  # 7 is not a square: no thumbnails
    found, printed = _aucs(arguments, capsys, tmp_path / "m.json")
    assert "x_train.npy is not drawn as thumbnails" in printed and found == _clean()


def test_float16_logits_near_their_largest_value(tmp_path, capsys):
    """Extreme but finite logits through a folder (the API's cases: tests/audit/test_hostile_api.py):
    every attack computes a number, nothing refused as NaN, no warning."""
    folder, arguments = make_input(tmp_path, "plain")
    resave(folder / "logits.npy", lambda a: (a.astype(np.float64) / np.abs(a).max() * 65504).astype(np.float16))
    found, _ = _aucs(arguments, capsys, tmp_path / "m.json")
    assert all(auc is not None and 0 <= auc <= 1 for auc in found.values()), found
