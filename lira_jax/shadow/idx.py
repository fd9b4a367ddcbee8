"""MNIST-format IDX files (images and labels, gzipped or not), as Debian's dataset-fashion-mnist ships them."""

import gzip
import math
import zlib
from pathlib import Path

import numpy as np

from lira_jax.errors import UserError

IDX_FILE_NAMES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
DEBIAN_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
# IDX type byte -> big-endian NumPy dtype (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT").
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
# split name -> (images [n, H, W, 1], labels [n]), raw values
RawSplits = dict[str, tuple[np.ndarray, np.ndarray]]


def load_idx(directory: Path, wanted_splits: tuple[str, ...]) -> tuple[RawSplits, int]:
    """MNIST-format IDX files (gzipped or not) in `directory` -> images [n, H, W, 1] and labels per split."""
    paths: dict[str, Path] = {}
    missing = []
    for split in wanted_splits:
        for name in IDX_FILE_NAMES[split]:
            found = [path for path in (directory / name, directory / f"{name}.gz") if path.is_file()]
            if found:
                paths[name] = found[0]
            else:
                missing.append(f"{name}[.gz]")
    if missing:
        raise UserError(
            f"missing IDX file(s) in {directory}: {', '.join(missing)}; for Fashion-MNIST on Debian/Ubuntu, "
            f"apt-get install dataset-fashion-mnist puts them in {DEBIAN_FASHION_MNIST_DIR}"
        )
    raw_splits: RawSplits = {}
    for split in wanted_splits:
        images_name, labels_name = IDX_FILE_NAMES[split]
        images = read_idx_file(paths[images_name])
        labels = read_idx_file(paths[labels_name])
        if images.ndim != 3 or labels.ndim != 1:
            raise UserError(
                f"{paths[images_name]} must hold [N, H, W] images and {paths[labels_name]} [N] labels, "
                f"found shapes {images.shape} and {labels.shape}"
            )
        if len(images) != len(labels):
            raise UserError(f"{paths[images_name]} holds {len(images)} images but its labels {len(labels)}")
        if not np.issubdtype(labels.dtype, np.integer):
            raise UserError(f"{paths[labels_name]}: labels must be integers, found {labels.dtype}")
        raw_splits[split] = (images[..., None], labels)
    return raw_splits, int(max(labels.max(initial=0) for _, labels in raw_splits.values())) + 1


def read_idx_file(path: Path) -> np.ndarray:
    """One IDX file (gzip detected from its content) -> array in native byte order, shape from its header."""
    try:
        content = path.read_bytes()
        if content[:2] == b"\x1f\x8b":
            content = gzip.decompress(content)
    except (OSError, EOFError, zlib.error) as error:  # gzip.BadGzipFile is an OSError; a corrupt stream zlib's
        raise UserError(f"cannot read IDX file {path}: {error or 'the gzip stream ends early'}") from None
    if len(content) < 4 or content[:2] != b"\0\0" or content[2] not in _IDX_DTYPES:
        raise UserError(f"{path} is not an IDX file (bad magic number {content[:4].hex()})")
    num_dims = content[3]
    header_size = 4 + 4 * num_dims
    if len(content) < header_size:
        raise UserError(f"{path} is truncated: its header is incomplete")
    shape = tuple(int(size) for size in np.frombuffer(content, ">u4", num_dims, offset=4))
    dtype = np.dtype(_IDX_DTYPES[content[2]])
    expected_size = header_size + math.prod(shape) * dtype.itemsize  # Python ints: a huge header cannot overflow
    if len(content) != expected_size:
        state = "truncated" if len(content) < expected_size else "longer than its header says"
        raise UserError(f"{path} is {state}: {len(content)} bytes, the header {shape} needs {expected_size}")
    return np.frombuffer(content, dtype, offset=header_size).reshape(shape).astype(dtype.newbyteorder("="))
