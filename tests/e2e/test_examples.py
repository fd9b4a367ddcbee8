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
