"""benchmarks/device_check.py --smoke: every row of the accelerator check runs at tiny size on the CPU and
writes one JSON line, a result or its error (slow-ish: about two minutes; kept so the check works the one
time a machine is lent). The smoke run has no time caps: it passes on a loaded machine too."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "device_check.py"
pytestmark = pytest.mark.slow


def test_smoke_run_writes_every_row(tmp_path):
    command = [sys.executable, str(SCRIPT), "--smoke", "--out", str(tmp_path / "out")]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert (tmp_path / "out" / "device_check.jsonl").read_text().splitlines() == lines
    rows = {row["row"]: row for row in map(json.loads, lines)}
    engine = ["engine loop 32", "engine vmap 64 fastnet", "engine loop 64 fastnet", "engine loop 32 unroll 1",
              "engine loop 32 unroll 2", "engine vmap 32"]  # fmt: skip
    torch = ["torch 1", "torch 2", "torch 4"]
    expected = {"device", *engine, "fashion_mnist", "end_to_end cold", "end_to_end warm", *torch, "done"}
    assert set(rows) == expected, result.stdout
    failed = {name: row["error"] for name, row in rows.items() if "error" in row}
    assert not failed, failed
    assert all(rows[name]["model_examples_per_s"] > 0 and rows[name]["flops_per_example"] > 0 for name in engine)
    assert [rows[f"engine loop 32 unroll {k}"]["unroll"] for k in (1, 2)] == [1, 2]
    for name in ("fashion_mnist", "end_to_end cold", "end_to_end warm"):
        assert rows[name]["seconds"] > 0 and rows[name]["model_batching"] in ("vmap", "loop", "host")
    assert all("skipped" in rows[name] or rows[name]["model_examples_per_s"] > 0 for name in torch)
    kept = {"fashion_metrics.json", "fashion_roc.png", "fashion_models.json", "fashion_log.txt"}
    assert kept <= {path.name for path in (tmp_path / "out").iterdir()}
