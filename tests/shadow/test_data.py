"""Tests of lira_jax.shadow.data: the keep matrix and every data source with its validation errors."""

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lira_jax.errors import UserError
from lira_jax.shadow.data import (
    DEBIAN_FASHION_MNIST_DIR,
    TFDS_NUM_CLASSES,
    check_training_sets,
    load_dataset,
    make_keep,
)

# ---------------------------------------------------------------- keep matrix


@settings(max_examples=50, deadline=None)
@given(half_models=st.integers(1, 16), num_examples=st.integers(1, 60), seed=st.integers(0, 2**32 - 1))
def test_balanced_keep_puts_every_example_in_exactly_half_the_models(half_models, num_examples, seed):
    keep = make_keep(2 * half_models, num_examples, seed=seed)
    assert keep.dtype == np.bool_ and keep.shape == (2 * half_models, num_examples)
    np.testing.assert_array_equal(keep.sum(axis=0), half_models)
    np.testing.assert_array_equal(keep, make_keep(2 * half_models, num_examples, seed=seed))


def test_keep_depends_on_the_seed_and_spreads_evenly_over_models():
    keep = make_keep(16, 2000, seed=1)
    assert not np.array_equal(keep, make_keep(16, 2000, seed=2))
    np.testing.assert_allclose(keep.mean(axis=1), 0.5, atol=0.05)  # each model gets about half the data


@settings(max_examples=20, deadline=None)
@given(probability=st.floats(0.05, 0.95), seed=st.integers(0, 1000))
def test_bernoulli_keep_rate(probability, seed):
    keep = make_keep(40, 1000, seed=seed, mode="bernoulli", probability=probability)
    assert keep.dtype == np.bool_ and keep.shape == (40, 1000)
    assert abs(keep.mean() - probability) < 0.015  # > 6 standard deviations for 40,000 draws
    again = make_keep(40, 1000, seed=seed, mode="bernoulli", probability=probability)
    np.testing.assert_array_equal(keep, again)


@pytest.mark.parametrize(
    ("num_models", "kwargs", "message"),
    [
        (1, {}, "at least 2 models"),
        (0, {"mode": "bernoulli"}, "at least 2 models"),
        (5, {}, "even"),
        (4, {"mode": "sometimes"}, "unknown keep mode"),
        (4, {"mode": "bernoulli", "probability": 1.0}, "between 0 and 1"),
        (4, {"seed": -1}, "seed"),
        (10**11, {}, "the keep matrix of 100000000000 models x 10 examples needs 15.5 TiB of memory"),
    ],
)
def test_bad_keep_arguments(num_models, kwargs, message):
    with pytest.raises(UserError, match=message):
        make_keep(num_models, 10, **{"seed": 0, **kwargs})


# ---------------------------------------------------------------- digits and general options


def test_digits_shapes_dtypes_and_normalisation():
    from sklearn.datasets import load_digits

    dataset = load_dataset("digits")
    assert dataset.images.shape == (1797, 8, 8, 1) and dataset.images.dtype == np.float32
    assert dataset.labels.dtype == np.int32 and dataset.origin.dtype == np.int8
    assert dataset.num_classes == 10 and dataset.source == "digits" and not dataset.origin.any()
    assert dataset.mean.dtype == np.float32 and dataset.std.shape == (1,)
    np.testing.assert_allclose(dataset.images.mean(axis=(0, 1, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(dataset.images.std(axis=(0, 1, 2)), 1, atol=1e-4)
    raw = load_digits()
    np.testing.assert_allclose(dataset.mean, raw.images.mean(), rtol=1e-6)
    np.testing.assert_allclose(dataset.images[..., 0] * dataset.std + dataset.mean, raw.images, atol=1e-4)
    np.testing.assert_array_equal(dataset.labels, raw.target)


def test_limit_takes_the_first_examples():
    full, limited = load_dataset("digits"), load_dataset("digits", limit=100)
    assert limited.images.shape == (100, 8, 8, 1)
    np.testing.assert_array_equal(limited.labels, full.labels[:100])


@pytest.mark.parametrize(
    ("source", "kwargs", "message"),
    [
        ("cifar10", {}, "unknown data source 'cifar10': expected digits, tfds:NAME"),
        ("hub:mnist", {}, "idx:DIR"),
        ("tfds:", {}, "unknown data source"),
        ("tfds:imagenet2012", {}, "unknown tfds data set 'imagenet2012'.*cifar10, cifar100, mnist"),
        ("digits", {"splits": "test"}, "digits has no test split"),
        ("digits", {"splits": "all"}, "unknown splits 'all'"),
        ("digits", {"limit": 0}, "positive"),
    ],
)
def test_bad_sources_and_options(source, kwargs, message):
    with pytest.raises(UserError, match=message):
        load_dataset(source, **kwargs)


# ---------------------------------------------------------------- IDX files


def write_idx(path: Path, array: np.ndarray, *, gzipped: bool) -> None:
    """Writes `array` (uint8) as an IDX file: 0, 0, type 0x08, ndim, big-endian uint32 sizes, data."""
    content = struct.pack(f">BBBB{array.ndim}I", 0, 0, 0x08, array.ndim, *array.shape) + array.tobytes()
    path.write_bytes(gzip.compress(content) if gzipped else content)


def write_idx_set(directory: Path, *, gzipped: bool, splits=("train", "test")) -> dict[str, np.ndarray]:
    """A tiny MNIST-format set in `directory` (5x4 images, to catch swapped axes); returns its arrays."""
    generator = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": generator.integers(0, 256, (6, 5, 4), dtype=np.uint8),
        "train-labels-idx1-ubyte": np.array([0, 1, 2, 3, 4, 2], np.uint8),
        "t10k-images-idx3-ubyte": generator.integers(0, 256, (3, 5, 4), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": np.array([2, 1, 0], np.uint8),
    }
    prefixes = tuple({"train": "train", "test": "t10k"}[split] for split in splits)
    for name, array in arrays.items():
        if name.startswith(prefixes):
            write_idx(directory / (name + (".gz" if gzipped else "")), array, gzipped=gzipped)
    return arrays


@pytest.mark.parametrize("gzipped", [False, True])
def test_idx_round_trip(tmp_path, gzipped):
    arrays = write_idx_set(tmp_path, gzipped=gzipped)
    dataset = load_dataset(f"idx:{tmp_path}")
    assert dataset.images.shape == (9, 5, 4, 1) and dataset.num_classes == 5
    np.testing.assert_array_equal(dataset.origin, [0] * 6 + [1] * 3)
    np.testing.assert_array_equal(dataset.labels, [0, 1, 2, 3, 4, 2, 2, 1, 0])
    raw = np.concatenate([arrays["train-images-idx3-ubyte"], arrays["t10k-images-idx3-ubyte"]])
    np.testing.assert_allclose(dataset.images[..., 0] * dataset.std + dataset.mean, raw, atol=1e-3)
    assert load_dataset(f"idx:{tmp_path}", splits="test").images.shape == (3, 5, 4, 1)


def test_idx_train_split_needs_only_train_files(tmp_path):
    write_idx_set(tmp_path, gzipped=True, splits=("train",))
    assert len(load_dataset(f"idx:{tmp_path}", splits="train").labels) == 6
    missing_test_files = "t10k-images-idx3-ubyte.*t10k-labels-idx1-ubyte.*dataset-fashion-mnist"
    with pytest.raises(UserError, match=missing_test_files):
        load_dataset(f"idx:{tmp_path}")


def test_idx_missing_directory(tmp_path):
    with pytest.raises(UserError, match="missing IDX file.*train-images-idx3-ubyte.*apt-get install"):
        load_dataset(f"idx:{tmp_path / 'nowhere'}")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda content: content[:-7], "truncated"),
        (lambda content: content[:6], "header is incomplete"),
        (lambda content: b"\x12\x34" + content[2:], "not an IDX file"),
        (lambda content: content + b"\0", "longer than its header"),
    ],
)
def test_damaged_idx_file(tmp_path, damage, message):
    write_idx_set(tmp_path, gzipped=False)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(UserError, match=message):
        load_dataset(f"idx:{tmp_path}")


def test_truncated_gzip_idx_file(tmp_path):
    write_idx_set(tmp_path, gzipped=True)
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(UserError, match="cannot read IDX file"):
        load_dataset(f"idx:{tmp_path}")


@pytest.mark.skipif(not Path(DEBIAN_FASHION_MNIST_DIR).is_dir(), reason="dataset-fashion-mnist not installed")
def test_debian_fashion_mnist():
    dataset = load_dataset(f"idx:{DEBIAN_FASHION_MNIST_DIR}", splits="test")
    assert dataset.images.shape == (10_000, 28, 28, 1) and dataset.num_classes == 10
    assert dataset.origin.all()


# ---------------------------------------------------------------- npz files


def test_npz_with_test_split_and_missing_channel(tmp_path):
    path = tmp_path / "set.npz"
    x = np.arange(4 * 3 * 3, dtype=np.float64).reshape(4, 3, 3)
    np.savez(path, x=x, y=np.array([0, 1, 0, 3]), x_test=x[:2] + 1, y_test=np.array([1.0, 2.0]))
    dataset = load_dataset(f"npz:{path}")
    assert dataset.images.shape == (6, 3, 3, 1) and dataset.num_classes == 4
    np.testing.assert_array_equal(dataset.origin, [0, 0, 0, 0, 1, 1])
    np.testing.assert_array_equal(dataset.labels, [0, 1, 0, 3, 1, 2])
    assert load_dataset(f"npz:{path}", splits="train").images.shape == (4, 3, 3, 1)


def test_npz_rgb_without_test_split(tmp_path):
    path = tmp_path / "rgb.npz"
    np.savez(path, x=np.random.default_rng(0).integers(0, 256, (5, 4, 4, 3), dtype=np.uint8), y=np.arange(5))
    dataset = load_dataset(f"npz:{path}")
    assert dataset.images.shape == (5, 4, 4, 3) and dataset.mean.shape == (3,) and not dataset.origin.any()
    np.testing.assert_allclose(dataset.images.std(axis=(0, 1, 2)), 1, atol=1e-4)
    with pytest.raises(UserError, match="no test split"):
        load_dataset(f"npz:{path}", splits="test")


GOOD_X = np.zeros((3, 4, 4, 1), np.float32)
GOOD_Y = np.array([0, 1, 2])


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"x": GOOD_X}, "must hold arrays 'x'.*'y'"),
        ({"x": GOOD_X, "y": GOOD_Y[:2]}, "'y' must be \\[N\\] with N = 3"),
        ({"x": np.where(GOOD_X == 0, np.nan, GOOD_X), "y": GOOD_Y}, "NaN"),
        ({"x": GOOD_X, "y": np.array([0, -1, 2])}, "negative"),
        ({"x": GOOD_X, "y": np.array([0, 1.5, 2])}, "integer class labels"),
        ({"x": GOOD_X[:, 0, 0, 0], "y": GOOD_Y}, "must be numbers \\[N, H, W, C\\]"),
        ({"x": GOOD_X > 0, "y": GOOD_Y}, "must be numbers"),
        ({"x": GOOD_X, "y": GOOD_Y, "x_test": GOOD_X}, "both 'x_test' and 'y_test'"),
        ({"x": GOOD_X, "y": GOOD_Y, "x_test": GOOD_X[:, :2], "y_test": GOOD_Y}, "differ in shape"),
        ({"x": GOOD_X[:0], "y": GOOD_Y[:0]}, "no examples"),
    ],
)
def test_bad_npz(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(UserError, match=message):
        load_dataset(f"npz:{path}")


def test_unreadable_npz(tmp_path):
    with pytest.raises(UserError, match="npz file not found"):
        load_dataset(f"npz:{tmp_path / 'absent.npz'}")
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(UserError, match="cannot read"):
        load_dataset(f"npz:{tmp_path / 'text.npz'}")
    np.save(tmp_path / "single.npy", GOOD_X)
    with pytest.raises(UserError, match="single array"):
        load_dataset(f"npz:{tmp_path / 'single.npy'}")
    np.savez(tmp_path / "objects.npz", x=np.array([None, 1], dtype=object), y=GOOD_Y)
    with pytest.raises(UserError, match="cannot read"):
        load_dataset(f"npz:{tmp_path / 'objects.npz'}")


# ---------------------------------------------------------------- TFDS (mocked: no download, no TensorFlow)

EXPECTED_TFDS_SHAPES = {
    "cifar10": (32, 32, 3),
    "cifar100": (32, 32, 3),
    "mnist": (28, 28, 1),
    "fashion_mnist": (28, 28, 1),
    "svhn_cropped": (32, 32, 3),
}


@pytest.fixture(scope="module")
def tfds():
    return pytest.importorskip("tensorflow_datasets", reason="tensorflow-datasets is not installed")


@pytest.mark.parametrize("name", sorted(TFDS_NUM_CLASSES))
def test_tfds_through_mock_data(tfds, name):
    with tfds.testing.mock_data(num_examples=6):
        dataset = load_dataset(f"tfds:{name}")
        test_only = load_dataset(f"tfds:{name}", splits="test")
    assert dataset.images.shape == (12, *EXPECTED_TFDS_SHAPES[name]) and dataset.images.dtype == np.float32
    assert dataset.num_classes == TFDS_NUM_CLASSES[name] and dataset.source == f"tfds:{name}"
    np.testing.assert_array_equal(dataset.origin, [0] * 6 + [1] * 6)
    assert dataset.labels.dtype == np.int32 and 0 <= dataset.labels.min() <= dataset.labels.max() < 100
    np.testing.assert_allclose(dataset.images.mean(axis=(0, 1, 2)), 0, atol=1e-4)
    assert test_only.images.shape == (6, *EXPECTED_TFDS_SHAPES[name]) and test_only.origin.all()


def test_tfds_limit_reads_into_the_test_split_only_as_needed(tfds):
    with tfds.testing.mock_data(num_examples=5):
        np.testing.assert_array_equal(load_dataset("tfds:cifar10", limit=7).origin, [0] * 5 + [1] * 2)
        assert len(load_dataset("tfds:mnist", limit=3).labels) == 3


def test_tfds_failure_to_prepare_is_a_user_error(tfds, monkeypatch):
    def offline(*args, **kwargs):
        raise ConnectionError("Failed to resolve 'storage.googleapis.com'\nmore detail")

    monkeypatch.setattr(tfds, "data_source", offline)
    expected = "could not load or prepare 'mnist'.*ConnectionError: Failed to resolve.*dataset-fashion-mnist"
    with pytest.raises(UserError, match=expected):
        load_dataset("tfds:mnist")


# ---------------------------------------------------------------- what any source must hold


def test_one_class_is_refused(tmp_path):
    path = tmp_path / "one.npz"
    np.savez(path, x=np.arange(4 * 9, dtype=np.float32).reshape(4, 3, 3), y=np.zeros(4, int))
    with pytest.raises(UserError, match="only class 0.*at least 2 classes"):
        load_dataset(f"npz:{path}")
    with pytest.raises(UserError, match="only class 0"):
        load_dataset("digits", limit=1)


def test_nan_pixels_of_a_float_idx_file_are_refused(tmp_path):
    images = np.ones((3, 2, 2), ">f4")
    images[2, 1, 0] = np.nan
    content = struct.pack(">BBBB3I", 0, 0, 0x0D, 3, *images.shape) + images.tobytes()
    (tmp_path / "train-images-idx3-ubyte").write_bytes(content)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.array([0, 1, 0], np.uint8), gzipped=False)
    with pytest.raises(UserError, match="NaN or infinite pixel values \\(first in example 2\\)"):
        load_dataset(f"idx:{tmp_path}", splits="train")


@pytest.mark.parametrize(
    ("keep", "message"),
    [
        (make_keep(4, 3, seed=0), "would train on 1 of the 3 examples"),
        (np.array([[True, True, False], [False, False, True]]), "model 1 would train on 1"),
        (np.zeros((2, 5), bool), "model 0 would train on 0"),
    ],
)
def test_models_need_two_training_examples(keep, message):
    with pytest.raises(UserError, match=message):
        check_training_sets(keep)
    check_training_sets(np.ones((2, 2), bool))


# ---------------------------------------------------------------- tables and token ids (issue 26)


def test_a_float_table_is_standardised_per_feature_and_a_constant_feature_stays_zero(tmp_path):
    rng = np.random.default_rng(0)
    table = np.column_stack([rng.normal(5, 3, 40), np.full(40, 7.0), rng.integers(0, 2, 40)]).astype(np.float32)
    np.savez(tmp_path / "table.npz", x=table, y=np.arange(40) % 4)
    dataset = load_dataset(f"npz:{tmp_path / 'table.npz'}")
    assert dataset.kind == "table" and dataset.images.shape == (40, 3) and dataset.images.dtype == np.float32
    np.testing.assert_allclose(dataset.mean, table.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(dataset.images.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(dataset.images.std(axis=0), [1, 0, 1], atol=1e-5)  # the constant feature: 0, not NaN
    np.savez(tmp_path / "binary.npz", x=table > 3, y=np.arange(40) % 4)  # booleans are 0/1 features
    assert load_dataset(f"npz:{tmp_path / 'binary.npz'}").kind == "table"


def test_token_ids_stay_integers_and_are_not_normalised(tmp_path):
    tokens = np.random.default_rng(0).integers(0, 50, (30, 7), dtype=np.int64)
    np.savez(tmp_path / "tokens.npz", x=tokens[:20], y=np.arange(20) % 3, x_test=tokens[20:], y_test=np.arange(10) % 3)
    dataset = load_dataset(f"npz:{tmp_path / 'tokens.npz'}")
    assert dataset.kind == "tokens" and dataset.images.dtype == np.int32 and dataset.mean.shape == (0,)
    np.testing.assert_array_equal(dataset.images, tokens)


TABLE = np.zeros((3, 5), np.float32)
TOKENS = np.array([[0, 1], [2, 3], [4, 5]])


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"x": np.where(TABLE == 0, np.inf, TABLE), "y": GOOD_Y}, "the table holds NaN or infinite feature values"),
        ({"x": np.where(TABLE == 0, np.nan, TABLE), "y": GOOD_Y}, r"NaN or infinite feature values \(first in exa"),
        ({"x": TOKENS - 3, "y": GOOD_Y}, "token ids must not be negative, found -3"),
        ({"x": TOKENS * 2**40, "y": GOOD_Y}, "token ids must be below 2\\*\\*31"),
        ({"x": np.zeros((3, 2, 2, 2, 1)), "y": GOOD_Y}, r"must be numbers \[N, H, W, C\] \(images\), floats \[N, D\]"),
        ({"x": TABLE.astype(np.complex64), "y": GOOD_Y}, "or integers \\[N, T\\] \\(token ids\\), found complex64"),
        ({"x": TABLE[:, :0], "y": GOOD_Y}, "each example holds no values"),
        ({"x": TOKENS, "y": GOOD_Y, "x_test": TOKENS * 0.5, "y_test": GOOD_Y}, "differ in kind"),
    ],
)
def test_bad_tables_and_token_ids(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(UserError, match=message):
        load_dataset(f"npz:{path}")


def test_synthetic_purchase_is_a_fixed_binary_table_of_100_classes():
    dataset = load_dataset("synthetic:purchase:3000")
    assert dataset.kind == "table" and dataset.images.shape == (3000, 600) and dataset.num_classes == 100
    raw = dataset.images * dataset.std + dataset.mean
    np.testing.assert_allclose(np.round(raw), raw, atol=1e-4)  # 0 or 1
    assert 0.03 < raw.mean() < 0.1 and len(np.unique(dataset.labels)) > 95
    np.testing.assert_array_equal(load_dataset("synthetic:purchase:100").labels, dataset.labels[:100])


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("synthetic:texas", "unknown synthetic data set 'texas'"),
        ("synthetic:purchase:many", "N must be a whole number"),
        ("synthetic:purchase:0", "N must lie in"),
    ],
)
def test_bad_synthetic_sources(source, message):
    with pytest.raises(UserError, match=message):
        load_dataset(source)
