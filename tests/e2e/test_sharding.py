"""The model axis sharded over forced CPU devices gives the same run as one device (M not divisible by 4)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import tiny_settings

TINY = ["--quiet", "--no-attack", *tiny_settings("train.num_models=6", "train.epochs=1")]


def train(out, device_count, *extra):
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={device_count}"}
    result = subprocess.run(
        [sys.executable, "-m", "lira_jax.train", "--out", str(out), *TINY, *extra],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_four_devices_match_one(tmp_path):
    """Vmapped on 4 devices (6 models padded to 8), and looped (train.model_batching = "loop") on 8 forced
    devices, of which a chunk of 6 models uses 6: both give the scores of one device."""
    train(tmp_path / "one", 1)
    train(tmp_path / "four", 4)
    train(tmp_path / "loop", 8, "--set", "train.model_batching=loop")
    np.testing.assert_array_equal(np.load(tmp_path / "one/keep.npy"), np.load(tmp_path / "four/keep.npy"))
    for other in ("four", "loop"):
        np.testing.assert_allclose(
            np.load(tmp_path / "one/scores.npy"), np.load(tmp_path / f"{other}/scores.npy"), rtol=1e-4, atol=1e-4
        )
    records = json.loads((tmp_path / "loop/models.json").read_text())["models"]
    assert {record["devices"] for record in records} == {6}
