"""Reading run arrays in chunks of examples, and the NaN check of each chunk read.

Arrays may be memmaps of any size: `map_example_chunks` reads them a block of examples at a time
(`read_examples`, with pread, not through the mapping) and hands chunks to the work function on a few
threads (NumPy's sorts and ufuncs release the GIL), so memory stays bounded whatever M and N are.
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import numpy as np

from lira_jax.errors import UserError

FLOAT32_MAX = float(np.finfo(np.float32).max)
PASS_LOGITS = "pass the logits before the softmax, or log-probabilities kept above 0, e.g. np.log(np.maximum(p, 1e-30))"
CHUNK_BYTES = 4 << 20  # working set per chunk: small enough for the CPU caches to matter
READ_BYTES = 64 << 10  # read memmaps at least this much per model row at a time
BLOCK_BYTES = 16 << 20  # and at most this much at a time, all rows together

Result = TypeVar("Result")


class ModelSubset:
    """Some models (rows) of a possibly memmapped array, read lazily: behaves as array[models]."""

    def __init__(self, array: np.ndarray, models: Sequence[int]):
        self.array = array
        self.models = np.asarray(models, dtype=np.int64)
        self.shape = (len(self.models), *array.shape[1:])
        self.dtype = array.dtype
        self.ndim = array.ndim


class MappedExamples:
    """function(array[:, start:stop], start, stop), computed when read: an array derived chunk by chunk.

    The function maps a chunk [M, n, ...] of `array` to one of `shape` [M, N, ...] and `dtype`, row by row
    (model rows are independent), so it composes with `subset_models`.
    """

    def __init__(self, array: Any, function: Callable[[np.ndarray, int, int], np.ndarray], shape, dtype):
        self.array = array
        self.function = function
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.ndim = len(self.shape)


class StackedModels:
    """Arrays [M_i, N, ...] stacked along the model axis, read lazily: behaves as np.concatenate(parts) in
    their common dtype (a run's memmapped models and one model more, without copying the run)."""

    def __init__(self, parts: Sequence[Any]):
        self.parts = list(parts)
        self.offsets = np.cumsum([0, *(part.shape[0] for part in self.parts)])
        self.shape = (int(self.offsets[-1]), *self.parts[0].shape[1:])
        self.dtype = np.result_type(*(part.dtype for part in self.parts))
        self.ndim = len(self.shape)


ExampleArray = np.ndarray | ModelSubset | MappedExamples | StackedModels  # what the attacks read (`read_examples`)


def subset_models(array: ExampleArray, models: Sequence[int]) -> ModelSubset | MappedExamples:
    """array[models] without reading it; composes with an existing ModelSubset or MappedExamples."""
    if isinstance(array, MappedExamples):
        inner = subset_models(array.array, models)
        return MappedExamples(inner, array.function, (inner.shape[0], *array.shape[1:]), array.dtype)
    if isinstance(array, ModelSubset):
        return ModelSubset(array.array, array.models[np.asarray(models)])
    return ModelSubset(array, models)


def read_examples(array: ExampleArray, start: int, stop: int) -> np.ndarray:
    """array[:, start:stop] as a C-contiguous in-memory array.

    A memmapped .npy is read with pread, one call per model row, not through its mapping: the
    kernel maps whole neighbourhoods of pages on each fault, which would fill the process's RSS with
    the file however little of it is kept.
    """
    if isinstance(array, MappedExamples):
        stop = min(stop, array.shape[1])
        return np.ascontiguousarray(array.function(read_examples(array.array, start, stop), start, stop))
    rows = array.models if isinstance(array, ModelSubset) else None
    base = array.array if isinstance(array, ModelSubset) else array
    if isinstance(base, StackedModels):
        return _read_stacked(base, rows, start, stop)
    if not (isinstance(base, np.memmap) and isinstance(base.base, mmap.mmap) and base.flags.c_contiguous):
        return np.ascontiguousarray(base[slice(None) if rows is None else rows, start:stop])
    rows = np.arange(base.shape[0]) if rows is None else rows
    start, stop = min(start, base.shape[1]), min(stop, base.shape[1])
    example_bytes = int(np.prod(base.shape[2:])) * base.dtype.itemsize
    out = np.empty((len(rows), stop - start, *base.shape[2:]), dtype=base.dtype)
    with open(base.filename, "rb", buffering=0) as handle:
        for index, row in enumerate(rows):
            target = memoryview(out[index]).cast("B")
            position = base.offset + (int(row) * base.shape[1] + start) * example_bytes
            if os.preadv(handle.fileno(), [target], position) != target.nbytes:
                raise UserError(f"{base.filename} is shorter than its header says")
    return out


def _read_stacked(stacked: StackedModels, rows: np.ndarray | None, start: int, stop: int) -> np.ndarray:
    """stacked[rows][:, start:stop] (rows None: every model), each part read only at its own rows."""
    rows = np.arange(stacked.shape[0]) if rows is None else rows
    start, stop = min(start, stacked.shape[1]), min(stop, stacked.shape[1])
    out = np.empty((len(rows), stop - start, *stacked.shape[2:]), dtype=stacked.dtype)
    for part, low, high in zip(stacked.parts, stacked.offsets[:-1], stacked.offsets[1:], strict=True):
        inside = (rows >= low) & (rows < high)
        if inside.any():
            out[inside] = read_examples(subset_models(part, rows[inside] - low), start, stop)
    return out


def map_example_chunks(
    work: Callable[..., Result],
    arrays: Sequence[Any],
    num_examples: int,
    bytes_per_example: int,
    chunk_examples: int | None = None,
    workers: int | None = None,
) -> list[Result]:
    """[work(start, stop, *chunks) for consecutive chunks of examples] in order, on `workers` threads.

    chunks[i] = arrays[i][:, start:stop], in memory. Chunks hold about CHUNK_BYTES of working memory
    (bytes_per_example each) unless chunk_examples is given. The arrays are read in blocks of whole
    chunks: at least READ_BYTES per model row, so that reads are long, and at most BLOCK_BYTES in all.
    """
    row_bytes = [int(np.prod(a.shape[2:])) * np.dtype(a.dtype).itemsize for a in arrays] or [1]
    largest_block = max(1, BLOCK_BYTES // sum(a.shape[0] * size for a, size in zip(arrays, row_bytes, strict=False)))
    chunk = min(chunk_examples or max(1, CHUNK_BYTES // max(1, bytes_per_example)), largest_block)
    block = chunk * max(1, min(-(-READ_BYTES // (chunk * min(row_bytes))), largest_block // chunk))

    def run(block_start: int) -> list[Result]:
        block_stop = min(block_start + block, num_examples)
        blocks = [read_examples(array, block_start, block_stop) for array in arrays]
        results = []
        for start in range(block_start, block_stop, chunk):
            stop = min(start + chunk, block_stop)
            pieces = [np.ascontiguousarray(part[:, start - block_start : stop - block_start]) for part in blocks]
            results.append(work(start, stop, *pieces))
        return results

    starts = range(0, num_examples, block)
    workers = workers or min(4, os.cpu_count() or 1)
    if workers == 1 or len(starts) == 1:
        return [result for start in starts for result in run(start)]
    with ThreadPoolExecutor(workers) as pool:
        return [result for results in pool.map(run, starts) for result in results]


def within_float32(values: np.ndarray) -> np.ndarray:
    """values clipped to float32's finite range (still in their dtype): scores from extreme but finite
    inputs become the largest float32 rather than inf when stored as float32, keeping their order."""
    return np.clip(values, -FLOAT32_MAX, FLOAT32_MAX)


def check_finite(values: np.ndarray, name: str, start: int, source: Any = None) -> None:
    """UserError naming the first NaN/inf of a chunk values[rows, n, ...] that begins at example `start`;
    source: the array read, so that a ModelSubset's rows are named by their model index."""
    if not np.isfinite(values).all():
        row, example, *_ = np.argwhere(~np.isfinite(values))[0]
        model = source.models[row] if isinstance(source, ModelSubset) else row
        value = values[row, example][~np.isfinite(values[row, example])].flat[0]
        where = f"model {model}, example {start + example}"
        raise UserError(f"{name} holds NaN or infinite values ({value} at {where}){not_finite_hint(name, value)}")


def not_finite_hint(name: str, value: float) -> str:
    """What to pass instead, where a −inf in logits is most likely the log of a probability of 0."""
    if name != "logits" or value != -np.inf:
        return ""
    return f": a log of 0? {PASS_LOGITS}"
