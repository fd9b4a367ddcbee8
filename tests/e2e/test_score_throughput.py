"""benchmarks/score_throughput.py at tiny size: every case runs as a whole command and the JSON says so."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import HANG_GUARD_S

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "score_throughput.py"
pytestmark = pytest.mark.slow


def test_whole_commands_and_their_summary():
    command = [sys.executable, str(SCRIPT), "--models", "6", "--examples", "200", "--views", "2", "--repeats", "1"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert [(run["case"], run["code"]) for run in report["runs"]] == [
        ("one_target", "this"),
        ("reference", "plain"),
        ("reference_vectorised", "plain"),
        ("all_targets", "this"),
    ]
    assert all(run["wall_s"] > 0 and run["peak_rss_mb"] > 0 for run in report["runs"])
    assert report["summary"]["speedup_over_reference"]["median"] > 0
    assert report["summary"]["speedup_over_reference_vectorised"]["median"] > 0
