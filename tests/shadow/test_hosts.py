"""Several processes (jax.distributed on localhost CPU) train one run as one process would; bad scaling flags."""

import json
import socket
import subprocess
import sys

import numpy as np
import pytest
from conftest import HANG_GUARD_S, tiny_settings

from lira_jax.shadow.hosts import share
from lira_jax.train import main

TINY = ["--quiet", "--no-attack", *tiny_settings("train.epochs=1")]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize(("count", "processes"), [(0, 2), (3, 2), (7, 3), (2, 4)])
def test_shares_are_disjoint_and_cover_the_models(count, processes):
    todo = np.arange(10, 10 + count)
    shares = [share(todo, index, processes) for index in range(processes)]
    np.testing.assert_array_equal(np.concatenate(shares), todo)
    assert max(map(len, shares)) - min(map(len, shares)) <= 1


@pytest.mark.slow
def test_two_processes_write_the_run_of_one(tmp_path):
    one = tmp_path / "one"
    subprocess.run([sys.executable, "-m", "lira_jax.train", "--out", str(one), *TINY], check=True, capture_output=True)

    two = tmp_path / "two"
    flags = ["--coordinator", f"127.0.0.1:{free_port()}", "--num-processes", "2"]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "lira_jax.train", "--out", str(two), *TINY, *flags, "--process-id", str(index)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for index in range(2)
    ]
    outputs = [process.communicate(timeout=HANG_GUARD_S)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    assert "4 of 4 models done" in outputs[0] and "models done" not in outputs[1]  # process 0 reports

    np.testing.assert_array_equal(np.load(one / "keep.npy"), np.load(two / "keep.npy"))
    np.testing.assert_allclose(np.load(one / "scores.npy"), np.load(two / "scores.npy"), rtol=1e-4, atol=1e-4)
    records = json.loads((two / "models.json").read_text())["models"]
    assert [record["chunk_size"] for record in records] == [2, 2, 2, 2]  # each process trained two models together


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--devices", "99"], "--devices 99: this process has 1 local device(s)"),
        (["--devices", "0"], "--devices 0"),
        (["--process-id", "1"], "give all three"),
        (["--coordinator", "h:1", "--num-processes", "2", "--process-id", "2"], "--process-id must lie in [0,"),
        (["--distributed", "--process-id", "0"], "without --coordinator"),
        (["--models=-1:2"], "outside [0, 4)"),
        (["--models", "0:5"], "outside [0, 4)"),
        (["--models", "2:2"], "or empty"),
        (["--models", "2"], "expects A:B"),
        (["--set", "train.models_per_step=5"], "train.models_per_step must be 'auto' or an integer in [1,"),
    ],
)
def test_bad_devices_hosts_slices_and_chunks_are_one_line_and_write_nothing(tmp_path, capsys, arguments, message):
    out = tmp_path / "run"
    assert main(["--out", str(out), *TINY, *arguments]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error:") and "\n" not in error and message in error
    assert not out.exists()
