"""The model axis sharded over 4 forced CPU devices gives the same run as one device (M not divisible by 4)."""

import os
import subprocess
import sys

import numpy as np

TINY = [
    "--quiet",
    "--no-attack",
    "--set",
    "data.limit=200",
    "--set",
    "train.num_models=6",
    "--set",
    "train.epochs=1",
    "--set",
    "model.width=4",
]


def train(out, device_count):
    env = {**os.environ, "XLA_FLAGS": f"--xla_force_host_platform_device_count={device_count}"}
    result = subprocess.run(
        [sys.executable, "-m", "lira_jax.train", "--out", str(out), *TINY], env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_four_devices_match_one(tmp_path):
    train(tmp_path / "one", 1)
    train(tmp_path / "four", 4)
    np.testing.assert_array_equal(np.load(tmp_path / "one/keep.npy"), np.load(tmp_path / "four/keep.npy"))
    np.testing.assert_allclose(
        np.load(tmp_path / "one/scores.npy"), np.load(tmp_path / "four/scores.npy"), rtol=1e-4, atol=1e-4
    )
