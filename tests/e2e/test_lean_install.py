"""`pip install --no-deps -e .` beside a preinstalled JAX: train + attack run without dp-accounting and
tensorflow-datasets, and asking for what needs one is one line naming its pip extra."""

import json
import os
import subprocess
import sys

from conftest import tiny_settings

BLOCKED = ("dp_accounting", "tensorflow_datasets")
TINY = [*tiny_settings("train.epochs=1"), "--quiet"]


def run_without_optional_packages(tmp_path, *arguments):
    """`python -m lira_jax.train ARGUMENTS` where importing either blocked package raises ImportError."""
    stubs = tmp_path / "stubs"
    for name in BLOCKED:
        (stubs / name).mkdir(parents=True, exist_ok=True)
        (stubs / name / "__init__.py").write_text(f"raise ImportError('{name} is blocked by the test')\n")
    path = os.pathsep.join([str(stubs), os.environ.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "lira_jax.train", *arguments],
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
    )


def test_train_and_attack_run_without_optional_packages(tmp_path):
    out = tmp_path / "run"
    result = run_without_optional_packages(tmp_path, "--out", str(out), *TINY)
    assert result.returncode == 0, result.stderr
    assert json.loads((out / "metrics.json").read_text())["attacks"]["rmia_online"]["auc"] > 0  # 4 models: LiRA n/a


def test_dp_sgd_without_dp_accounting_names_the_extra(tmp_path):
    out = tmp_path / "dp"
    dp = ["--set", "train.dp_sgd=true", "--set", "model.norm='group'"]
    result = run_without_optional_packages(tmp_path, "--out", str(out), *TINY, *dp)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "lira-jax[dp]" in lines[0], result.stderr
    assert not (out / "scores.npy").exists()
