"""A run killed with SIGKILL resumes with the same command: done models kept, the rest retrained, same scores.

Kills land at chosen moments: the command runs with one function wrapped so that its n-th call writes a
marker file and sleeps (PAUSING below); the test kills the process once the marker appears. One run is
killed at every moment in turn (each kill lands in a rerun of the same command), then finishes.
"""

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import HANG_GUARD_S, tiny_settings

TINY = ["--quiet", *tiny_settings("train.models_per_step=1")]

# argv: module, attribute in it (a function or Class.method), n, "before" | "after", marker path, train's argv.
PAUSING = """
import importlib, sys, time
module, attribute, call, when, marker = sys.argv[1:6]
owner = importlib.import_module(module)
*owners, name = attribute.split(".")
for part in owners:
    owner = getattr(owner, part)
original, calls = getattr(owner, name), []

def pausing(*args, **kwargs):
    calls.append(1)
    pause = len(calls) == int(call)
    if pause and when == "before":
        open(marker, "w").close(); time.sleep(600)
    result = original(*args, **kwargs)
    if pause:
        open(marker, "w").close(); time.sleep(600)
    return result

setattr(owner, name, pausing)
from lira_jax.train import main
raise SystemExit(main(sys.argv[6:]))
"""


def command(out):
    return [sys.executable, "-m", "lira_jax.train", "--out", str(out), *TINY]


def records(out):
    try:
        return json.loads((out / "models.json").read_text())["models"]
    except (FileNotFoundError, json.JSONDecodeError):
        return []


def done(out):
    return [record["done"] for record in records(out)]


def kill(process):
    process.send_signal(signal.SIGKILL)
    process.wait()


def wait_for(condition, process, seconds=HANG_GUARD_S):
    deadline = time.monotonic() + seconds
    while not condition() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert condition(), f"the moment never came (exit status {process.poll()})"


MOMENTS = [
    # (moment, function wrapped, its call that pauses, pause before or after it, done models once killed)
    # config.toml is the last file written into the half-built folder, just before it is renamed into place.
    ("during folder creation", "lira_jax.config", "to_toml", 1, "after", None),
    # Model 0's rows are in the memmap (not flushed) and nothing is marked done.
    ("mid-chunk, nothing done", "lira_jax.store", "RunFolder.write_rows", 1, "after", [False] * 4),
    # Model 0 is done again (the last kill came before it was); model 1's rows are written, not marked done.
    ("after one model is done", "lira_jax.store", "RunFolder.mark_done", 2, "before", [True, False, False, False]),
    # All models done; the attack has scored but written neither roc.png nor metrics.json.
    ("during the attack", "lira_jax.audit.report.plots", "roc_image", 1, "before", [True] * 4),
]


@pytest.mark.slow
def test_sigkill_at_several_moments_then_resume_equals_an_uninterrupted_run(tmp_path):
    """One run killed at each moment in turn, each time rerun with the same command, then let finish."""
    reference = tmp_path / "reference"
    subprocess.run(command(reference), check=True, capture_output=True)

    out, before = tmp_path / "run", []
    for moment, module, attribute, call, when, done_after_kill in MOMENTS:
        marker = tmp_path / moment
        process = subprocess.Popen(
            [sys.executable, "-c", PAUSING, module, attribute, str(call), when, str(marker), *command(out)[3:]],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(marker.exists, process)
        kill(process)
        if done_after_kill is None:
            assert not out.exists(), moment  # the half-built folder never took the run's name
        else:
            assert done(out) == done_after_kill, moment
            assert not (out / "metrics.json").exists(), moment
        after = records(out)
        for old, new in zip(before, after, strict=False):
            if old["done"]:
                assert new == old, moment  # not trained again: its timings would differ
        before = after

    finished = np.array(done(out))
    rows_before = np.load(out / "scores.npy")[finished]
    subprocess.run(command(out), check=True, capture_output=True)
    assert records(out) == before  # every model was done before the attack was killed
    np.testing.assert_array_equal(np.load(out / "scores.npy")[finished], rows_before)
    np.testing.assert_allclose(np.load(out / "scores.npy"), np.load(reference / "scores.npy"), rtol=1e-5, atol=1e-5)
    ours, theirs = (json.loads((run / "metrics.json").read_text())["attacks"] for run in (out, reference))
    assert ours.keys() == theirs.keys()
    for name in ours:
        for key in ("auc", "balanced_accuracy"):
            assert ours[name][key] == pytest.approx(theirs[name][key], abs=1e-4), (name, key)
