"""examples/: each runs end to end (small settings), where its optional dependency is installed."""

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import HANG_GUARD_S

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
pytestmark = pytest.mark.slow


def test_audit_pytorch_smoke(tmp_path):
    pytest.importorskip(
        "torch", reason="the example needs torch (pip install torch --index-url https://download.pytorch.org/whl/cpu)"
    )
    command = [sys.executable, str(EXAMPLES / "audit_pytorch.py"), "--models", "4", "--epochs", "2"]
    done = subprocess.run([*command, "--out", str(tmp_path)], capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "lira_online" in done.stdout and "most exposed examples" in done.stdout
    written = {path.name for path in tmp_path.iterdir()}
    assert written == {"report.html", "roc.png", "metrics.json", "examples.csv"}


def test_own_recipe_smoke(tmp_path):
    """A linen and an nnx model with their own optimizers, trained from Python and attacked (4 models each)."""
    command = [sys.executable, str(EXAMPLES / "own_recipe.py"), "--models", "4", "--epochs", "1", "--limit", "200"]
    done = subprocess.run([*command, "--out", str(tmp_path)], capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert done.returncode == 0, done.stderr[-2000:]
    for name in ("linen", "nnx"):
        assert f"{tmp_path / name}: LiRA online" in done.stdout
        assert (tmp_path / name / "report.html").is_file() and (tmp_path / name / "recipe.json").is_file()


def test_rda_to_npz_makes_a_table_the_npz_source_reads(tmp_path):
    """A tiny data frame written by rdata stands in for mlbench's files: factor label, numeric and factor features."""
    rdata = pytest.importorskip("rdata", reason="examples/rda_to_npz.py needs rdata (pip install rdata)")
    import numpy as np
    import pandas as pd

    from lira_jax.shadow.data import load_dataset

    frame = pd.DataFrame(
        {
            "lettr": pd.Categorical(list("ABCA")),
            "x.box": [1.0, 2.0, 3.0, 4.0],
            "v": pd.Categorical(["0", "1", "1", "0"]),
        }
    )
    rdata.write_rda(tmp_path / "Tiny.rda", {"Tiny": frame})
    command = [sys.executable, str(EXAMPLES / "rda_to_npz.py"), str(tmp_path / "Tiny.rda"), str(tmp_path / "t.npz")]
    refused = subprocess.run(command, capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert refused.returncode != 0 and "2 categorical columns: name the label with --label" in refused.stderr
    command += ["--label", "lettr"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert done.returncode == 0, done.stderr[-2000:]
    dataset = load_dataset(f"npz:{tmp_path / 't.npz'}")
    assert dataset.kind == "table" and dataset.images.shape == (4, 2) and dataset.num_classes == 3
    np.testing.assert_array_equal(dataset.labels, [0, 1, 2, 0])
    np.testing.assert_allclose(dataset.images * dataset.std + dataset.mean, [[1, 0], [2, 1], [3, 1], [4, 0]], atol=1e-5)
    again = subprocess.run(command, capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert again.returncode != 0 and "exists: it is not replaced" in again.stderr


MLBENCH_LETTERS = Path("/usr/lib/R/site-library/mlbench/data/LetterRecognition.rda")


def test_rda_to_npz_on_debians_letter_recognition(tmp_path):
    pytest.importorskip("rdata", reason="examples/rda_to_npz.py needs rdata (pip install rdata)")
    if not MLBENCH_LETTERS.is_file():
        pytest.skip(f"{MLBENCH_LETTERS} is not here (apt-get install r-cran-mlbench, or dpkg -x its .deb)")
    command = [sys.executable, str(EXAMPLES / "rda_to_npz.py"), str(MLBENCH_LETTERS), str(tmp_path / "letter.npz")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert done.returncode == 0 and "x float32[20000, 16], y in 26 classes" in done.stdout
