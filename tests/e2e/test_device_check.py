"""benchmarks/device_check.py --smoke: every row of the accelerator check runs at tiny size on the CPU and
writes one JSON line, a result or its error (slow-ish: about two minutes; kept so the check works the one
time a machine is lent). `--budget 0`: no time limit, so that a loaded machine makes the test slower, never
turns its rows into "budget spent" or a timeout."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "device_check.py"
pytestmark = pytest.mark.slow


def test_smoke_run_writes_every_row(tmp_path):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--budget", "0"], capture_output=True, text=True, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    rows = {row["row"]: row for row in map(json.loads, result.stdout.splitlines())}
    engine = [f"engine {way} {size}" for size in (32, 128, 8) for way in ("vmap", "loop")]
    assert set(rows) == {"device", *engine, "torch_loop", "auto", "end_to_end", "done"}, result.stdout
    failed = {name: row["error"] for name, row in rows.items() if "error" in row}
    assert not failed, failed
    assert all(rows[name]["model_examples_per_s"] > 0 and rows[name]["flops_per_example"] > 0 for name in engine)
    assert rows["auto"]["model_batching"] in ("vmap", "loop", "host") and rows["end_to_end"]["lira_online_auc"] >= 0
