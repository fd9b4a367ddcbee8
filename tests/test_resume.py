"""A run killed with SIGKILL resumes with the same command: done models kept, the rest retrained, same scores."""

import json
import signal
import subprocess
import sys
import time

import numpy as np

TINY = [
    "--quiet",
    "--no-attack",
    "--set",
    "data.limit=160",
    "--set",
    "train.num_models=4",
    "--set",
    "train.epochs=2",
    "--set",
    "model.width=4",
    "--set",
    "train.models_per_step=1",
]


def command(out):
    return [sys.executable, "-m", "lira_jax.train", "--out", str(out), *TINY]


def done(out):
    try:
        return [record["done"] for record in json.loads((out / "models.json").read_text())["models"]]
    except (FileNotFoundError, json.JSONDecodeError):
        return []


def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path):
    reference = tmp_path / "reference"
    subprocess.run(command(reference), check=True, capture_output=True)

    killed = tmp_path / "killed"
    process = subprocess.Popen(command(killed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while sum(done(killed)) < 1 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished_before = done(killed)
    assert 1 <= sum(finished_before) < 4, finished_before
    records_before = json.loads((killed / "models.json").read_text())["models"]
    rows_before = np.load(killed / "scores.npy")[np.array(finished_before)]

    subprocess.run(command(killed), check=True, capture_output=True)
    assert all(done(killed))
    records_after = json.loads((killed / "models.json").read_text())["models"]
    for before, after in zip(records_before, records_after, strict=True):
        if before["done"]:
            assert after == before  # not trained again: its timings would differ
    np.testing.assert_array_equal(np.load(killed / "scores.npy")[np.array(finished_before)], rows_before)
    np.testing.assert_allclose(np.load(killed / "scores.npy"), np.load(reference / "scores.npy"), rtol=1e-5, atol=1e-5)
