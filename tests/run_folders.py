"""Synthetic run folders for the audit and study tests: arrays laid out as a trained run's, with a known signal."""

import json
from pathlib import Path

import numpy as np

from lira_jax.audit.phi import logit_scale


def write_run(
    folder: Path,
    num_models=12,
    num_examples=300,
    num_views=2,
    num_classes=5,
    signal=1.5,
    seed=0,
    logits=True,
    done=None,
    balanced=True,
) -> Path:
    """A run folder as docs/run_folder.md lays it out; membership raises the true class's logit by `signal`.

    balanced: each example in exactly half of the models, else in each model with probability 1/2.
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    if balanced:
        keep = np.argsort(rng.random((num_models, num_examples)), axis=0) < num_models // 2
    else:
        keep = rng.random((num_models, num_examples)) < 0.5
        sizes = keep.sum(axis=0)
        keep[:, (sizes < 3) | (sizes > num_models - 3)] = np.arange(num_models)[:, None] % 2 == 0
    labels = rng.integers(0, num_classes, num_examples).astype(np.int32)
    values = rng.normal(0, 1, size=(num_models, num_examples, num_views, num_classes))
    difficulty = rng.normal(2, 1.5, size=num_examples)
    values[:, np.arange(num_examples), :, labels] += (difficulty + signal * keep).T[:, :, None]
    values = values.astype(np.float16)
    np.save(folder / "keep.npy", keep)
    np.save(folder / "labels.npy", labels)
    np.save(folder / "scores.npy", logit_scale(values, labels))
    if logits:
        np.save(folder / "logits.npy", values)
    if done is not None:
        records = [{"index": index, "done": bool(flag)} for index, flag in enumerate(done)]
        (folder / "models.json").write_text(json.dumps({"models": records}))
    return folder
