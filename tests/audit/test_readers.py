"""The readers of the LiRA reference code's experiment folders and of its PyTorch port, on folders written here
in their layouts (file names, shapes and dtypes as their inference.py, score.py and train.py write them)."""

import numpy as np
import pytest
from run_folders import write_port, write_reference

from lira_jax.audit.inputs.phi import logit_scale
from lira_jax.audit.inputs.readers import detect_layout, read_lira_reference
from lira_jax.errors import UserError

M, N, V, C = 5, 12, 2, 4


def _experiment(seed=0):
    rng = np.random.default_rng(seed)
    keep = rng.random((M, N + 3)) < 0.5  # train.py's keep covers dataset_size; the plot trims it to N
    logits = rng.normal(size=(M, N, V, C)).astype(np.float32)
    labels = rng.integers(0, C, N + 3).astype(np.uint8)
    return keep, logits, labels


def test_reference_folder_in_our_layout(tmp_path):
    keep, logits, labels = _experiment()
    write_reference(tmp_path / "exp" / "cifar10", keep, logits, labels)
    assert detect_layout(tmp_path / "exp") == "reference"
    read = read_lira_reference(tmp_path / "exp")
    assert read.layout == "reference" and read.epochs == ["0000000020"] * M
    assert read.models == [f"cifar10/experiment-{m}_{M}" for m in range(M)]
    np.testing.assert_array_equal(read.keep, keep[:, :N])
    assert read.keep.dtype == bool
    np.testing.assert_array_equal(read.logits, logits)
    np.testing.assert_array_equal(read.labels, labels[:N])
    assert read.scores.shape == (M, N, V) and read.scores.dtype == np.float32
    assert read.inputs.shape == (N, 4, 4, 3)
    # the layouts line up: our φ from the stacked logits is the reference's score
    np.testing.assert_allclose(logit_scale(read.logits, read.labels), read.scores, atol=1e-4)


def test_reference_models_in_numeric_order_and_scores_only(tmp_path):
    rng = np.random.default_rng(1)
    keep = rng.random((12, N)) < 0.5
    logits = rng.normal(size=(12, N, 1, C)).astype(np.float32)
    labels = rng.integers(0, C, N)
    write_reference(tmp_path, keep, logits, labels, epochs=("0000000100",))
    for model in range(12):  # as if score.py had run and the logits were deleted to save space
        for file in (tmp_path / f"experiment-{model}_12" / "logits").iterdir():
            file.unlink()
    read = read_lira_reference(tmp_path)
    assert [name.split("_")[0] for name in read.models] == [f"experiment-{m}" for m in range(12)]
    assert read.logits is None and read.scores.shape == (12, N, 1)
    np.testing.assert_array_equal(read.keep, keep)


def test_port_folder_in_our_layout(tmp_path):
    keep, logits, labels = _experiment(2)
    write_port(tmp_path, keep, logits, labels)
    assert detect_layout(tmp_path) == "pytorch-port"
    with pytest.raises(UserError, match="no labels"):
        read_lira_reference(tmp_path)
    np.save(tmp_path / "labels.npy", labels)
    read = read_lira_reference(tmp_path, labels=tmp_path / "labels.npy")
    assert read.models == [str(m) for m in range(M)] and read.epochs is None and read.inputs is None
    np.testing.assert_array_equal(read.logits, logits)
    np.testing.assert_array_equal(read.keep, keep[:, :N])
    np.testing.assert_allclose(logit_scale(read.logits, read.labels), read.scores, atol=1e-4)


def test_port_scores_only_needs_no_labels(tmp_path):
    keep, logits, labels = _experiment(3)
    write_port(tmp_path, keep, logits, labels, with_logits=False)
    read = read_lira_reference(tmp_path)
    assert read.logits is None and read.labels is None and read.scores.dtype == np.float32


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda root: np.save(root / "1" / "keep.npy", np.zeros(3, bool)), "N' >= 12"),
        (lambda root: np.save(root / "1" / "keep.npy", np.full(N, 2)), "bool or 0/1"),
        (lambda root: np.save(root / "1" / "scores.npy", np.zeros((N + 1, V))), "differ in shape"),
        (lambda root: np.save(root / "1" / "scores.npy", np.zeros((N, V), np.int32)), "floating point"),
        (lambda root: (root / "1" / "scores.npy").unlink(), "neither logits.npy nor scores.npy in 1"),
    ],
)
def test_bad_folders_are_one_line_errors(tmp_path, damage, message):
    keep, logits, labels = _experiment(4)
    write_port(tmp_path, keep, logits, labels, with_logits=False)
    damage(tmp_path)
    with pytest.raises(UserError, match=message):
        read_lira_reference(tmp_path)


def test_not_an_experiment_folder(tmp_path):
    assert detect_layout(tmp_path) is None
    with pytest.raises(UserError, match="neither a LiRA reference folder"):
        read_lira_reference(tmp_path)
