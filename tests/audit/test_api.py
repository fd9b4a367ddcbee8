"""lira_jax.audit_logits and the attack command line on folders of plain logits and reference-code folders:
the same numbers either way, φ never written into the user's folder, and `import lira_jax` without JAX."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import HANG_GUARD_S
from run_folders import write_port, write_reference

import lira_jax
from lira_jax.attack import main
from lira_jax.errors import UserError

ATTACKS = "lira_online,lira_online_fixed_var,lira_offline,rmia_online,global_threshold,loss,entropy"
OUTPUTS = {"metrics.json", "metrics.csv", "examples.csv", "report.html", "roc.png"}


def _logits(num_models=8, num_examples=80, num_views=1, num_classes=4, seed=0):
    """Plain logits as another framework has them: float64, keep as 0/1 int8, labels uint8."""
    rng = np.random.default_rng(seed)
    keep = (np.argsort(rng.random((num_models, num_examples)), axis=0) < num_models // 2).astype(np.int8)
    labels = rng.integers(0, num_classes, num_examples).astype(np.uint8)
    logits = rng.normal(size=(num_models, num_examples, num_views, num_classes))
    logits += (1.5 + 2.0 * keep)[:, :, None, None] * np.eye(num_classes)[labels][None, :, None, :]
    return logits, keep, labels


def _without_timing(metrics):
    """What the command line and the API must agree on: all but the time taken, the invocation id and the
    files read (the API reads none)."""
    return {key: value for key, value in metrics.items() if key not in ("seconds", "invocation", "inputs")}


def test_plain_logits_folder_through_the_command_line_equals_audit_logits(tmp_path, capsys):
    logits, keep, labels = _logits()
    folder = tmp_path / "mine"
    folder.mkdir()
    np.save(folder / "logits.npy", logits[:, :, 0])  # [M, N, C], float64, no scores.npy
    np.save(folder / "keep.npy", keep)
    np.save(folder / "labels.npy", labels)
    assert main([str(folder), "--attacks", ATTACKS, "--top", "3"]) == 0
    printed = capsys.readouterr().out
    assert "most exposed examples by lira_online" in printed
    assert {path.name for path in folder.iterdir()} == OUTPUTS | {"logits.npy", "keep.npy", "labels.npy"}
    from_cli = json.loads((folder / "metrics.json").read_text())
    audit = lira_jax.audit_logits(logits[:, :, 0], keep, labels, attacks=ATTACKS.split(","), title="mine")
    assert _without_timing(audit.metrics) == _without_timing(from_cli)
    rows = list(csv.DictReader((folder / "examples.csv").open()))
    assert len(rows) == 80 and float(rows[5]["lira_online_in"]) == pytest.approx(
        audit.examples["lira_online_in"][5], rel=1e-5
    )
    assert printed.count("\n") > len(audit.table().splitlines())


def test_reference_folder_through_the_command_line(tmp_path, capsys):
    logits, keep, labels = _logits(num_views=2, seed=1)
    write_reference(tmp_path / "exp", keep.astype(bool), logits.astype(np.float32), labels)
    assert main([str(tmp_path / "exp"), "--format", "lira-reference", "--attacks", ATTACKS]) == 0
    assert {path.name for path in (tmp_path / "exp").iterdir()} >= OUTPUTS
    assert "scores" not in {path.name for path in (tmp_path / "exp").iterdir()}
    from_cli = json.loads((tmp_path / "exp" / "metrics.json").read_text())
    audit = lira_jax.audit_logits(logits.astype(np.float32), keep, labels, attacks=ATTACKS.split(","))
    assert _without_timing(audit.metrics) == _without_timing(from_cli)
    page = (tmp_path / "exp" / "report.html").read_text()
    assert page.count('class="thumbnail"') == 12  # x_train.npy is at hand: the most exposed as thumbnails


def test_port_folder_needs_its_labels(tmp_path, capsys):
    logits, keep, labels = _logits(seed=2)
    write_port(tmp_path / "port", keep.astype(bool), logits.astype(np.float32), labels)
    assert main([str(tmp_path / "port"), "--format", "lira-reference", "--attacks", "lira_online"]) == 2
    assert "no labels" in capsys.readouterr().err
    np.save(tmp_path / "labels.npy", labels)
    arguments = [str(tmp_path / "port"), "--format", "lira-reference", "--labels", str(tmp_path / "labels.npy")]
    assert main([*arguments, "--attacks", "lira_online,loss"]) == 0


def test_square_logits_are_read_as_models_by_examples():
    logits, keep, labels = _logits(num_models=8, num_examples=8)  # M == N: φ's ambiguous case
    square = lira_jax.audit_logits(logits[:, :, 0], keep, labels, attacks=["global_threshold"])
    explicit = lira_jax.audit_logits(logits, keep, labels, attacks=["global_threshold"])
    assert _without_timing(square.metrics) == _without_timing(explicit.metrics)


def test_targets_views_and_errors():
    logits, keep, labels = _logits(num_views=2)
    audit = lira_jax.audit_logits(logits, keep, labels, attacks=["lira_offline"], targets=[0, 3], views=[1])
    assert audit.metrics["targets"] == [0, 3] and audit.metrics["num_views"] == 1
    assert lira_jax.audit_logits(logits, keep, labels, attacks=["loss"], targets="last").metrics["targets"] == [7]
    with pytest.raises(UserError, match="distinct model indices"):
        lira_jax.audit_logits(logits, keep, labels, targets=[0, 0])
    with pytest.raises(UserError, match="unknown 'vibes': attacks takes names"):
        lira_jax.audit_logits(logits, keep, labels, attacks=["vibes"])
    with pytest.raises(UserError, match="transposed"):
        lira_jax.audit_logits(logits, keep.T, labels)


def test_torch_tensors_give_the_same_numbers():
    torch = pytest.importorskip("torch", reason="torch is an optional extra (pip install torch)")
    logits, keep, labels = _logits()
    from_numpy = lira_jax.audit_logits(logits, keep, labels, attacks=["lira_online", "entropy"])
    tensor = torch.tensor(logits, requires_grad=True) * 1.0  # part of a graph, as a model's output is
    from_torch = lira_jax.audit_logits(
        tensor, torch.tensor(keep), torch.tensor(labels.astype(np.int64)), attacks=["lira_online", "entropy"]
    )
    assert _without_timing(from_torch.metrics) == _without_timing(from_numpy.metrics)


def test_audit_writes_its_files(tmp_path):
    logits, keep, labels = _logits()
    audit = lira_jax.audit_logits(logits, keep, labels, attacks=["lira_online", "global_threshold"])
    audit.plot_roc(tmp_path / "roc.png")
    audit.to_html(tmp_path / "report.html")
    audit.write_examples_csv(tmp_path / "examples.csv")
    assert all((tmp_path / name).stat().st_size > 1000 for name in ("roc.png", "report.html", "examples.csv"))
    with pytest.raises(UserError, match="not a directory"):
        audit.to_html(tmp_path / "missing" / "report.html")


def test_import_lira_jax_imports_no_jax():
    probe = (
        "import sys, lira_jax\n"
        "[getattr(lira_jax, name) for name in lira_jax.__all__]\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('jax', 'jaxlib', 'flax', 'optax', 'torch')))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
