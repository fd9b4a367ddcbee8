"""[canaries]: extra examples after the data set's N0, recorded in RUN/canaries.json and kept like any example."""

import json

import numpy as np
import pytest
from conftest import tiny_settings

from lira_jax.config import CanaryConfig
from lira_jax.errors import UserError
from lira_jax.shadow.canaries import CANARY_ORIGIN, with_canaries
from lira_jax.shadow.data import Dataset
from lira_jax.train import main


def dataset_of(inputs: np.ndarray, num_classes: int = 4) -> Dataset:
    labels = (np.arange(len(inputs)) % num_classes).astype(np.int32)
    empty = np.zeros(0, np.float32)
    return Dataset(inputs, labels, num_classes, "test", np.zeros(len(inputs), np.int8), empty, empty)


def test_mislabeled_canaries_copy_distinct_examples_with_another_class():
    rng = np.random.default_rng(0)
    dataset = dataset_of(rng.normal(size=(30, 4, 4, 1)).astype(np.float32))
    extended, record = with_canaries(dataset, CanaryConfig(count=12, kind="mislabeled", seed=3))
    source = np.asarray(record["copied_from"])
    assert record["indices"] == list(range(30, 42)) and len(set(source.tolist())) == 12
    np.testing.assert_array_equal(extended.images[30:], dataset.images[source])
    np.testing.assert_array_equal(extended.labels[30:], record["labels"])
    assert (extended.labels[30:] != dataset.labels[source]).all()
    assert (extended.origin[30:] == CANARY_ORIGIN).all() and extended.images.dtype == np.float32
    assert with_canaries(dataset, CanaryConfig(count=12, kind="mislabeled", seed=3))[1] == record  # seeded


@pytest.mark.parametrize("kind", ["images", "table", "tokens"])
def test_noise_canaries_lie_in_the_datas_range_with_random_labels(kind):
    rng = np.random.default_rng(1)
    inputs = {
        "images": rng.uniform(-2, 3, size=(40, 4, 4, 1)).astype(np.float32),
        "table": rng.normal(size=(40, 6)).astype(np.float32),
        "tokens": rng.integers(0, 7, size=(40, 5)).astype(np.int32),
    }[kind]
    extended, record = with_canaries(dataset_of(inputs), CanaryConfig(count=25, kind="noise"))
    noise = extended.images[40:]
    assert noise.shape == (25, *inputs.shape[1:]) and noise.dtype == inputs.dtype
    assert record["copied_from"] is None and set(record["labels"]) <= set(range(4))
    if kind == "tokens":
        assert noise.min() >= 0 and noise.max() <= inputs.max()
    elif kind == "images":
        assert inputs.min() <= noise.min() and noise.max() <= inputs.max()
    else:
        assert abs(noise.mean()) < 0.3 and 0.8 < noise.std() < 1.2


def test_no_canaries_leave_the_data_set_as_it_is():
    dataset = dataset_of(np.zeros((5, 3), np.float32))
    assert with_canaries(dataset, CanaryConfig()) == (dataset, None)


def check_canary_run(out, num_ordinary: int, count: int, kind: str) -> None:
    record = json.loads((out / "canaries.json").read_text())
    assert {key: record[key] for key in ("count", "kind", "seed")} == {"count": count, "kind": kind, "seed": 0}
    assert record["indices"] == list(range(num_ordinary, num_ordinary + count))
    keep = np.load(out / "keep.npy")
    assert keep.shape == (4, num_ordinary + count) and (keep.sum(axis=0) == 2).all()  # balanced, canaries too
    np.testing.assert_array_equal(np.load(out / "labels.npy")[num_ordinary:], record["labels"])
    assert np.isfinite(np.load(out / "scores.npy")[:, num_ordinary:]).all()
    assert "[canaries]" in (out / "config.toml").read_text()


def test_a_run_of_images_records_its_canaries_and_keeps_them(tmp_path):
    out = tmp_path / "run"
    settings = tiny_settings("canaries.count=20")
    assert main(["--out", str(out), *settings, "--no-attack", "--quiet"]) == 0
    check_canary_run(out, 200, 20, "mislabeled")


def test_a_run_of_a_table_records_its_noise_canaries_and_keeps_them(tmp_path):
    out = tmp_path / "run"
    settings = tiny_settings(
        "data.source=synthetic:purchase:200", "model.arch=mlp", "model.hidden=[8]", "train.epochs=1",
        "canaries.count=10", "canaries.kind=noise",
    )  # fmt: skip
    assert main(["--out", str(out), *settings, "--no-attack", "--quiet"]) == 0
    check_canary_run(out, 200, 10, "noise")


@pytest.mark.parametrize(
    "change, message",
    [
        ("canaries.count=201", "canaries.count = 201 exceeds the data set's 200 examples"),
        ("canaries.kind=loud", "canaries.kind must be one of mislabeled, noise"),
    ],
)
def test_bad_canaries_are_one_line_and_write_nothing(tmp_path, capsys, change, message):
    assert_refused_in_one_line(tmp_path, capsys, change, message)


def assert_refused_in_one_line(tmp_path, capsys, change: str, message: str) -> None:
    """`train` with the tiny settings and `change` exits 2 with one `error:` line holding `message`, and
    writes nothing into tmp_path."""
    assert main(["--out", str(tmp_path / "run"), *tiny_settings(change), "--quiet"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and message in error and "\n" not in error
    assert list(tmp_path.iterdir()) == []


def test_count_larger_than_the_data_is_a_user_error_before_anything():
    with pytest.raises(UserError, match="at most one canary per ordinary example"):
        with_canaries(dataset_of(np.zeros((3, 2), np.float32)), CanaryConfig(count=4, kind="noise"))
