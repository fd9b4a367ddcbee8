"""Data sets pooled into one array of N examples, and the keep matrix saying which model trains on which.

Sources: `digits` (scikit-learn's bundled 8x8 digits), `tfds:NAME` (TensorFlow Datasets read through
`tfds.data_source`, no TensorFlow needed to read), `idx:DIR` (MNIST-format IDX files), `npz:PATH` (images,
a table or token ids) and `synthetic:purchase[:N]` (a Purchase-100-style table, shadow/synthetic.py).

The inputs are of one of three kinds (input_kind): images [N, H, W, C], a table float [N, D] or token ids
int [N, T]. Images and tables are standardised per channel or feature; token ids are kept as they are.
"""

import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from lira_jax.config import CHOICES
from lira_jax.errors import UserError
from lira_jax.shadow import synthetic
from lira_jax.shadow.idx import DEBIAN_FASHION_MNIST_DIR, load_idx
from lira_jax.writing import size_text

TFDS_NUM_CLASSES = {"cifar10": 10, "cifar100": 100, "mnist": 10, "fashion_mnist": 10, "svhn_cropped": 10}
KNOWN_SOURCES = (
    f"digits, tfds:NAME (NAME one of {', '.join(TFDS_NUM_CLASSES)}), idx:DIR (MNIST-format IDX files) "
    "npz:PATH (arrays x, y and optionally x_test, y_test) or synthetic:purchase[:N]"
)
INPUT_SHAPES = "numbers [N, H, W, C] (images), floats [N, D] (a table) or integers [N, T] (token ids)"
TOKEN_ID_MAX = 2**31 - 1  # token ids reach JAX as int32
_TFDS_BATCH = 1024

# split name -> (inputs: [n, H, W, C], [n, D] or [n, T], labels: [n]), raw values
RawSplits = dict[str, tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class Dataset:
    """All N examples shared by the models, normalised, in a fixed order (train split first, then test).

    images: the inputs, of one of three kinds (`kind`): "images" float32[N, H, W, C] and "table"
        float32[N, D] are (raw - mean) / std per channel or feature (mean 0 and std 1 over the whole set);
        "tokens" int32[N, T] are the token ids as given (never cast to float).
    labels: int32[N], in [0, num_classes).
    source: the source string it was loaded from, e.g. "digits" or "tfds:cifar10".
    origin: int8[N], 0 where the example came from the source's train split, 1 from its test split.
    mean, std: float32[C] (images) or float32[D] (a table), per-channel or per-feature mean and standard
        deviation of the raw values over the N examples; float32[0] for token ids.
    """

    images: np.ndarray
    labels: np.ndarray
    num_classes: int
    source: str
    origin: np.ndarray
    mean: np.ndarray
    std: np.ndarray

    @property
    def kind(self) -> str:
        """ "images", "table" or "tokens" (input_kind)."""
        return input_kind(self.images)


def input_kind(inputs: np.ndarray) -> str:
    """ "images" for [N, H, W, C], "tokens" for integers [N, T], "table" for other [N, D] (as load_dataset
    gives them: other ranks never reach here)."""
    if inputs.ndim != 2:
        return "images"
    return "tokens" if np.issubdtype(inputs.dtype, np.integer) else "table"


def load_dataset(
    source: str, *, splits: str = "train+test", limit: int | None = None, data_dir: str | None = None
) -> Dataset:
    """Loads `source` as one normalised Dataset.

    splits: "train+test" pools both splits (every example may be a member, the LiRA setup), "train" or
    "test" takes one. limit: keep only the first `limit` examples after pooling (deterministic).
    data_dir: TFDS's data directory (tfds sources only; None = TFDS's default).
    Raises UserError for an unknown source, missing or malformed files, or a split the source lacks.
    """
    if splits not in CHOICES["data.splits"]:
        raise UserError(f"unknown splits {splits!r}: expected one of {', '.join(CHOICES['data.splits'])}")
    if limit is not None and limit < 1:
        raise UserError(f"data limit must be a positive number of examples, got {limit}")
    wanted_splits = tuple(splits.split("+"))
    scheme, _, location = source.partition(":")
    if source == "digits":
        raw_splits, num_classes = _load_digits(wanted_splits)
    elif scheme == "tfds" and location:
        raw_splits, num_classes = _load_tfds(location, wanted_splits, limit, data_dir)
    elif scheme == "idx" and location:
        raw_splits, num_classes = load_idx(Path(location), wanted_splits)
    elif scheme == "npz" and location:
        raw_splits, num_classes = _load_npz(Path(location), wanted_splits)
    elif scheme == "synthetic" and location:
        raw_splits, num_classes = _load_synthetic(location, wanted_splits)
    else:
        raise UserError(f"unknown data source {source!r}: expected {KNOWN_SOURCES}")

    raw_images, labels, origin = _pool(raw_splits, limit)
    if labels.min() < 0 or labels.max() >= num_classes:
        found = f"{labels.min()}..{labels.max()}"
        raise UserError(f"{source}: labels must lie in [0, {num_classes}), found {found}")
    present = np.unique(labels)
    if len(present) < 2:
        raise UserError(
            f"{source}: the {len(labels)} example(s) hold only class {present[0]}; a classifier (and a"
            " membership test on it) needs at least 2 classes (raise data.limit or use other data)"
        )
    kind = input_kind(raw_images)
    if raw_images.dtype.kind == "f" and not np.isfinite(raw_images).all():
        first = int(np.flatnonzero(~np.isfinite(raw_images).reshape(len(raw_images), -1).all(axis=1))[0])
        what = {"images": "the images hold NaN or infinite pixel", "table": "the table holds NaN or infinite feature"}
        raise UserError(f"{source}: {what[kind]} values (first in example {first})")
    if kind == "tokens":
        empty = np.zeros(0, np.float32)
        return Dataset(_token_ids(raw_images, source), labels, num_classes, source, origin, empty, empty)
    images = raw_images.astype(np.float32)
    mean, std = _channel_mean_std(images)
    images -= mean
    images /= std
    return Dataset(images, labels, num_classes, source, origin, mean, std)


def make_keep(
    num_models: int, num_examples: int, *, seed: int, mode: str = "balanced", probability: float = 0.5
) -> np.ndarray:
    """Which model trains on which example: keep: bool[num_models, num_examples], reproducible from `seed`.

    "balanced": every example is in exactly num_models / 2 models (num_models must be even), a uniformly
    random half for each example independently. "bernoulli": each (model, example) independently with
    `probability`.
    """
    if num_models < 2:
        raise UserError(f"need at least 2 models (targets are scored against the others), got {num_models}")
    if num_examples < 1:
        raise UserError(f"need at least 1 example, got {num_examples}")
    if seed < 0:
        raise UserError(f"the seed must not be negative, got {seed}")
    needed = 17 * num_models * num_examples  # float64 draws, their int64 argsort, the bool matrix
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if needed > memory:
        raise UserError(
            f"the keep matrix of {num_models} models x {num_examples} examples needs {size_text(needed)} of memory"
            f" to draw, more than this machine's {size_text(memory)}: train fewer models or use fewer examples"
        )
    generator = np.random.default_rng(seed)
    if mode == "balanced":
        if num_models % 2:
            raise UserError(f"balanced keep needs an even number of models, got {num_models}")
        # The argsort of i.i.d. uniforms is a uniformly random permutation of the models, per example.
        model_order = generator.random((num_models, num_examples)).argsort(axis=0)
        return model_order < num_models // 2
    if mode == "bernoulli":
        if not 0 < probability < 1:
            raise UserError(f"keep probability must lie strictly between 0 and 1, got {probability}")
        return generator.random((num_models, num_examples)) < probability
    raise UserError(f"unknown keep mode {mode!r}: expected one of {', '.join(CHOICES['train.keep'])}")


def check_training_sets(keep: np.ndarray) -> None:
    """Refuses a keep matrix (bool[M, N]) that leaves a model fewer than 2 training examples."""
    sizes = keep.sum(axis=1)
    smallest = int(sizes.argmin())
    if sizes[smallest] < 2:
        raise UserError(
            f"model {smallest} would train on {sizes[smallest]} of the {keep.shape[1]} examples: every model needs"
            " at least 2 (use more data (data.limit) or, with train.keep = 'bernoulli', a larger keep_probability)"
        )


def _pool(raw_splits: RawSplits, limit: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Concatenates train then test, and cuts to `limit`: raw images [N, H, W, C], int32[N], int8[N]."""
    names = [name for name in ("train", "test") if name in raw_splits]
    shapes = {raw_splits[name][0].shape[1:] for name in names}
    if len(shapes) > 1:
        raise UserError(f"the train and test images differ in shape: {' vs '.join(map(str, shapes))}")
    kinds = {input_kind(raw_splits[name][0]) for name in names}
    if len(kinds) > 1:
        raise UserError(f"the train and test inputs differ in kind: {' vs '.join(sorted(kinds))} (integer or float)")
    if sum(len(raw_splits[name][1]) for name in names) == 0:
        raise UserError("the data set holds no examples")
    images = np.concatenate([raw_splits[name][0] for name in names])[:limit]
    labels = np.concatenate([raw_splits[name][1] for name in names]).astype(np.int32)[:limit]
    origin = np.concatenate([np.full(len(raw_splits[name][1]), name == "test", np.int8) for name in names])
    return images, labels, origin[:limit]


def _channel_mean_std(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """float32[N, H, W, C] or [N, D] -> (mean, std): float32[C] or [D] each, over every axis but the last;
    float64 sums in chunks to bound memory."""
    chunks = range(0, len(images), 4096)
    count = images.size // images.shape[-1]
    axes = tuple(range(images.ndim - 1))
    mean = sum(images[i : i + 4096].sum(axis=axes, dtype=np.float64) for i in chunks) / count
    variance = sum(np.square(images[i : i + 4096] - mean).sum(axis=axes) for i in chunks) / count
    std = np.sqrt(variance)
    std[std == 0] = 1.0  # a constant channel or feature stays constant (0) instead of becoming NaN
    return mean.astype(np.float32), std.astype(np.float32)


def _token_ids(raw: np.ndarray, source: str) -> np.ndarray:
    """Integer token ids [N, T] -> int32[N, T], refusing negative ids and ids beyond int32."""
    smallest, largest = int(raw.min()), int(raw.max())
    if smallest < 0:
        first = int(np.flatnonzero((raw < 0).any(axis=1))[0])
        raise UserError(f"{source}: token ids must not be negative, found {smallest} (first in example {first})")
    if largest > TOKEN_ID_MAX:
        raise UserError(f"{source}: token ids must be below 2**31 (they reach JAX as int32), found {largest}")
    return raw.astype(np.int32)


def _load_synthetic(name: str, wanted_splits: tuple[str, ...]) -> tuple[RawSplits, int]:
    """`synthetic:purchase[:N]`: N examples (default synthetic.PURCHASE_EXAMPLES), all in the train split."""
    kind, _, count_text = name.partition(":")
    if kind != "purchase":
        raise UserError(f"unknown synthetic data set {name!r}: expected synthetic:purchase or synthetic:purchase:N")
    try:
        count = int(count_text) if count_text else synthetic.PURCHASE_EXAMPLES
    except ValueError:
        raise UserError(f"synthetic:{name}: N must be a whole number, e.g. synthetic:purchase:20000") from None
    if not 1 <= count <= synthetic.PURCHASE_MAX_EXAMPLES:
        raise UserError(f"synthetic:{name}: N must lie in [1, {synthetic.PURCHASE_MAX_EXAMPLES:,}], got {count}")
    if "train" not in wanted_splits:
        raise UserError("synthetic data has no test split: use splits = 'train' or 'train+test'")
    features, labels = synthetic.purchase(count)
    return {"train": (features, labels)}, synthetic.PURCHASE_CLASSES


def _load_digits(wanted_splits: tuple[str, ...]) -> tuple[RawSplits, int]:
    """scikit-learn's 1,797 digits: images float64[N, 8, 8, 1] with values 0..16; all in the train split."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise UserError("the digits source needs scikit-learn: pip install scikit-learn (or use idx:, npz:)") from None

    if "train" not in wanted_splits:
        raise UserError("digits has no test split: use splits = 'train' or 'train+test'")
    digits = load_digits()
    return {"train": (digits.images[..., None], digits.target)}, 10


def _load_tfds(
    name: str, wanted_splits: tuple[str, ...], limit: int | None, data_dir: str | None
) -> tuple[RawSplits, int]:
    """Reads TFDS splits into uint8[n, H, W, C] and labels; tfds downloads and prepares them if needed."""
    if name not in TFDS_NUM_CLASSES:
        raise UserError(f"unknown tfds data set {name!r}: expected one of {', '.join(TFDS_NUM_CLASSES)}")
    try:
        import tensorflow_datasets as tfds
    except ImportError as error:
        raise UserError(
            f"tfds:{name} needs tensorflow-datasets: pip install 'lira-jax[tfds]' (or use idx: or npz:)"
        ) from error
    try:
        sources = tfds.data_source(name, split=list(wanted_splits), data_dir=data_dir)
    except Exception as error:  # download and preparation fail in many ways: network, disk, no TensorFlow
        reason = (str(error).strip().splitlines() or [""])[0][:300]
        raise UserError(
            f"tfds could not load or prepare {name!r} (data_dir {data_dir or 'default'}): "
            f"{type(error).__name__}: {reason}. Preparing needs internet and TensorFlow (reading a prepared "
            f"array_record copy does not: `tfds build {name} --file_format=array_record`); offline, "
            f"Fashion-MNIST is idx:{DEBIAN_FASHION_MNIST_DIR} (apt-get install dataset-fashion-mnist)"
        ) from error
    raw_splits: RawSplits = {}
    remaining = limit
    for split, source in zip(wanted_splits, sources, strict=True):
        count = len(source) if remaining is None else min(len(source), remaining)
        if count == 0:
            continue
        raw_splits[split] = _read_tfds_records(source, count, f"reading tfds:{name} {split}")
        remaining = None if remaining is None else remaining - count
    return raw_splits, TFDS_NUM_CLASSES[name]


def _read_tfds_records(source, count: int, description: str) -> tuple[np.ndarray, np.ndarray]:
    """The first `count` records of a TFDS data source -> (uint8[count, H, W, C], int64[count])."""
    images: np.ndarray | None = None
    labels = np.zeros(count, np.int64)
    with tqdm(total=count, desc=description, unit="img", disable=count < 10_000, leave=False) as progress:
        for start in range(0, count, _TFDS_BATCH):
            keys = list(range(start, min(start + _TFDS_BATCH, count)))
            try:
                records = source.__getitems__(keys)  # one batched read, much faster than item by item
            except TypeError:  # tfds.testing.mock_data (tfds 4.9) binds its __getitems__ without `self`
                records = [source[key] for key in keys]
            for offset, record in enumerate(records):
                if images is None:
                    images = np.zeros((count, *np.shape(record["image"])), np.uint8)
                images[start + offset] = record["image"]
                labels[start + offset] = record["label"]
            progress.update(len(keys))
    assert images is not None, "called with count >= 1"
    return images, labels


def _load_npz(path: Path, wanted_splits: tuple[str, ...]) -> tuple[RawSplits, int]:
    """An .npz with x [N, H, W(, C)], [N, D] or [N, T] and y [N], optionally x_test and y_test -> inputs,
    labels per split."""
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise UserError(f"{path} is a single array, not an .npz holding 'x' and 'y' (use np.savez)")
        with archive:
            arrays = {key: archive[key] for key in archive.files}
    except FileNotFoundError as error:
        raise UserError(f"npz file not found: {path}") from error
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        reason = " ".join(str(error).split())[:200]
        raise UserError(f"cannot read {path} as an .npz of plain arrays: {reason}") from error
    if "x" not in arrays or "y" not in arrays:
        raise UserError(f"{path} must hold arrays 'x' (images, table or token ids) and 'y' [N], found {sorted(arrays)}")
    if ("x_test" in arrays) != ("y_test" in arrays):
        raise UserError(f"{path} must hold both 'x_test' and 'y_test' or neither")
    if wanted_splits == ("test",) and "x_test" not in arrays:
        raise UserError(f"{path} has no test split (x_test, y_test): use splits 'train' or 'train+test'")
    keys = {"train": ("x", "y"), "test": ("x_test", "y_test")}
    present = [split for split in wanted_splits if keys[split][0] in arrays]
    raw_splits = {split: _checked_npz_split(path, arrays, *keys[split]) for split in present}
    return raw_splits, int(max(labels.max(initial=0) for _, labels in raw_splits.values())) + 1


def _checked_npz_split(
    path: Path, arrays: dict[str, np.ndarray], images_key: str, labels_key: str
) -> tuple[np.ndarray, np.ndarray]:
    """Validates one split of an .npz: inputs (images [n, H, W, C], the channel added to [n, H, W]; a table
    float [n, D], booleans read as 0 and 1; token ids int [n, T]), labels int64[n]."""
    images, labels = arrays[images_key], arrays[labels_key]
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim == 2 and images.dtype == np.bool_:
        images = images.astype(np.float32)
    is_numeric = np.issubdtype(images.dtype, np.integer) or np.issubdtype(images.dtype, np.floating)
    if images.ndim not in (2, 4) or not is_numeric:
        found = f"{images.dtype}{list(images.shape)}"
        raise UserError(f"{path}: {images_key!r} must be {INPUT_SHAPES}, found {found}")
    if labels.ndim != 1 or len(labels) != len(images):
        found = f"shape {labels.shape}"
        raise UserError(f"{path}: {labels_key!r} must be [N] with N = {len(images)}, found {found}")
    if len(images) == 0:
        raise UserError(f"{path}: {images_key!r} holds no examples")
    if images.size == 0:
        raise UserError(f"{path}: {images_key!r} has shape {list(images.shape)}: each example holds no values")
    is_whole = np.issubdtype(labels.dtype, np.floating) and np.isfinite(labels).all()
    if is_whole and (labels == np.round(labels)).all():
        labels = labels.astype(np.int64)  # class numbers saved as floats
    if not np.issubdtype(labels.dtype, np.integer):
        raise UserError(f"{path}: {labels_key!r} must hold integer class labels, found {labels.dtype}")
    if labels.min() < 0:
        raise UserError(f"{path}: {labels_key!r} holds negative labels (smallest {labels.min()})")
    return images, labels.astype(np.int64)
