"""Canaries: extra examples appended after a data set's N0 ordinary ones, for auditing DP-SGD (issue 28).

A canary is an example like any other for the run: the keep matrix puts each in a random half of the
models (balanced like every example), the models train and are queried on it, and scores.npy, logits.npy,
keep.npy and labels.npy hold it at its index N0 + k. RUN/canaries.json says which examples they are:

    {"count": K, "kind": "mislabeled" | "noise", "seed": S, "indices": [N0, ..., N0 + K - 1],
     "copied_from": [n, ...] (mislabeled) | null (noise), "labels": [y, ...]}

mislabeled: copies of K distinct ordinary examples drawn by the seed, each with another class (drawn
uniformly among the other classes). noise: random inputs with uniformly random labels; images uniform in
the normalised data's range [min, max], tables standard normal features (the normalised features' scale),
token ids uniform below the vocabulary (model.vocab_size, else the data's largest id + 1).
At most N0 canaries of either kind: a mislabeled canary copies a distinct example, and canaries that
outnumber the ordinary examples would make the run a study of noise rather than of the data set.
"""

import dataclasses
import json
from typing import Any

import numpy as np

from lira_jax.config import CanaryConfig
from lira_jax.errors import UserError
from lira_jax.shadow.data import Dataset

CANARIES_FILE = "canaries.json"
CANARY_ORIGIN = 2  # Dataset.origin of a canary (0: the source's train split, 1: its test split)


def check_count(canaries: CanaryConfig, num_ordinary: int) -> None:
    """UserError unless `canaries.count` fits a data set of `num_ordinary` examples (at most N0)."""
    if canaries.count > num_ordinary:
        raise UserError(
            f"canaries.count = {canaries.count} exceeds the data set's {num_ordinary} examples: at most one canary"
            " per ordinary example (a mislabeled canary copies a distinct one); lower canaries.count"
        )


def _noise_inputs(rng: np.random.Generator, dataset: Dataset, count: int, vocab_size: int) -> np.ndarray:
    """count random inputs shaped and typed as the data set's: [K, ...] float32 or int32 token ids."""
    inputs = dataset.images
    shape = (count, *inputs.shape[1:])
    if dataset.kind == "tokens":
        return rng.integers(0, vocab_size or int(inputs.max()) + 1, size=shape).astype(inputs.dtype)
    if dataset.kind == "table":
        return rng.standard_normal(shape).astype(np.float32)
    return rng.uniform(float(inputs.min()), float(inputs.max()), size=shape).astype(np.float32)


def with_canaries(dataset: Dataset, canaries: CanaryConfig, vocab_size: int = 0) -> tuple[Dataset, dict | None]:
    """The data set with `canaries.count` canaries appended (module docstring), and their canaries.json record
    (None, and the data set unchanged, for count 0). vocab_size: model.vocab_size (0: the data's largest id + 1)."""
    if not canaries.count:
        return dataset, None
    num_ordinary, count, classes = len(dataset.labels), canaries.count, dataset.num_classes
    check_count(canaries, num_ordinary)
    rng = np.random.default_rng(canaries.seed)
    copied_from = None
    if canaries.kind == "mislabeled":
        copied_from = np.sort(rng.choice(num_ordinary, size=count, replace=False))
        inputs = dataset.images[copied_from]
        labels = (dataset.labels[copied_from] + rng.integers(1, classes, size=count)) % classes
    else:
        inputs = _noise_inputs(rng, dataset, count, vocab_size)
        labels = rng.integers(0, classes, size=count)
    labels = labels.astype(np.int32)
    extended = dataclasses.replace(
        dataset,
        images=np.concatenate([dataset.images, inputs]),
        labels=np.concatenate([dataset.labels.astype(np.int32), labels]),
        origin=np.concatenate([dataset.origin, np.full(count, CANARY_ORIGIN, np.int8)]),
    )
    record = {
        "count": count,
        "kind": canaries.kind,
        "seed": canaries.seed,
        "indices": list(range(num_ordinary, num_ordinary + count)),
        "copied_from": None if copied_from is None else copied_from.tolist(),
        "labels": labels.tolist(),
    }
    return extended, record


def record_text(record: dict[str, Any]) -> str:
    return json.dumps(record, indent=1)
