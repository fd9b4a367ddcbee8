"""Synthetic run folders for the audit and study tests: arrays laid out as a trained run's, with a known signal,
and the LiRA reference code's experiment folders and its PyTorch port's (`write_reference`, `write_port`)."""

import json
from pathlib import Path

import numpy as np

from lira_jax.audit.inputs.phi import logit_scale


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


def trained_records(keep: np.ndarray, save_epochs=()) -> list[dict]:
    """models.json's records of a finished run as the trainer writes them (docs/run_folder.md), every model
    done, with the fields a done record always carries (made-up accuracies and timings)."""
    accuracies = {"train_accuracy": 0.9, "test_accuracy": 0.7}
    return [
        {
            "index": index,
            "done": True,
            **accuracies,
            "members": int(row.sum()),
            "chunk_seconds": 1.5,
            "train_seconds": 1.0,
            **({"epochs": {str(epoch): {**accuracies, "members": int(row.sum())} for epoch in save_epochs}}
               if save_epochs else {}),
        }
        for index, row in enumerate(keep)
    ]  # fmt: skip


def reference_scores(logits, labels):
    """score.py's formula, on [N, 1, V, C] logits: log p_y - log(sum of the others), through probabilities."""
    predictions = np.exp(logits - logits.max(axis=3, keepdims=True)).astype(np.float64)
    predictions /= predictions.sum(axis=3, keepdims=True)
    count = predictions.shape[0]
    y_true = predictions[np.arange(count), :, :, labels[:count]]
    predictions[np.arange(count), :, :, labels[:count]] = 0
    y_wrong = predictions.sum(axis=3)
    return np.log(y_true.mean(1) + 1e-45) - np.log(y_wrong.mean(1) + 1e-45)


def write_reference(root, keep, logits, labels, *, scores=True, epochs=("0000000010", "0000000020")):
    """exp/cifar10-like LOGDIR: x_train.npy, y_train.npy, experiment-K_M/{hparams.json, keep.npy, logits/, scores/}."""
    root.mkdir(parents=True, exist_ok=True)
    np.save(root / "x_train.npy", np.zeros((keep.shape[1], 4, 4, 3), np.float32))
    np.save(root / "y_train.npy", labels)
    for model in range(keep.shape[0]):
        folder = root / f"experiment-{model}_{keep.shape[0]}"
        (folder / "logits").mkdir(parents=True)
        (folder / "hparams.json").write_text(json.dumps({"arch": "wrn28-2"}))
        np.save(folder / "keep.npy", keep[model])
        for index, epoch in enumerate(epochs):  # earlier epochs hold other numbers: only the last counts
            saved = logits[model][:, None] + (0 if index == len(epochs) - 1 else 100)
            np.save(folder / "logits" / f"{epoch}.npy", saved)
            if scores:
                (folder / "scores").mkdir(exist_ok=True)
                np.save(folder / "scores" / f"{epoch}.npy", reference_scores(saved, labels))


def write_port(root, keep, logits, labels, *, with_logits=True):
    """lira-pytorch's SAVEDIR/I/{keep.npy, model.pt, logits.npy [N, V, C], scores.npy [N, V]}."""
    for model in range(keep.shape[0]):
        folder = root / str(model)
        folder.mkdir(parents=True)
        np.save(folder / "keep.npy", keep[model, : logits.shape[1]])
        (folder / "model.pt").write_bytes(b"")
        if with_logits:
            np.save(folder / "logits.npy", logits[model])
        np.save(folder / "scores.npy", reference_scores(logits[model][:, None], labels).astype(np.float64))


def write_canary_run(folder: Path, num_canaries=64, canary_signal=4.0, epsilon=None, num_models=16, num_examples=100):
    """A run folder as the trainer writes it with `[canaries] count > 0` (docs/run_folder.md): num_examples
    ordinary examples, then num_canaries canaries whose membership raises their true logit by canary_signal;
    canaries.json, and models.json with every model done and, with an epsilon, DP-SGD's dp_epsilon and dp_delta."""
    total = num_examples + num_canaries
    signal = np.r_[np.full(num_examples, 1.5), np.full(num_canaries, canary_signal)]
    write_run(folder, num_models=num_models, num_examples=total, signal=signal, seed=1)
    keep = np.load(folder / "keep.npy")
    labels = np.load(folder / "labels.npy")
    privacy = {} if epsilon is None else {"dp_epsilon": epsilon, "dp_delta": 1e-5}
    records = [{**record, **privacy} for record in trained_records(keep)]
    (folder / "models.json").write_text(json.dumps({"models": records}))
    canaries = {
        "count": num_canaries,
        "kind": "mislabeled",
        "seed": 0,
        "indices": list(range(num_examples, total)),
        "copied_from": list(range(num_canaries)),
        "labels": labels[num_examples:].tolist(),
    }
    (folder / "canaries.json").write_text(json.dumps(canaries))
    return folder


def reduced_noise(private_gradient, divisor: float):
    """`private_gradient` (lira_jax.shadow.privacy) with its noise multiplier divided by `divisor`: a broken
    DP-SGD whose noise is smaller than the one the accountant is told (the config's)."""

    def broken(example_loss, params, examples, key, privacy, sample=None):
        weaker = privacy._replace(noise_multiplier=privacy.noise_multiplier / divisor)
        return private_gradient(example_loss, params, examples, key, weaker, sample)

    return broken


def write_dp_canary_run(
    folder: Path,
    *,
    noise_divisor: float = 10.0,
    num_models: int = 8,
    canaries: int = 64,
    kind: str = "mislabeled",
    noise_multiplier: float = 1.0,
    epochs: int = 2,
    sampling: str = "poisson",
    extra: tuple[str, ...] = (),
) -> Path:
    """A run trained for a DP audit (`study dp-audit`): tiny DP-SGD models on 200 digits (conftest's tiny
    settings, GroupNorm, batch 16) with `canaries` canaries of `kind` (RUN/canaries.json), accounted for
    `noise_multiplier` (models.json's dp_epsilon), while the engine adds noise_multiplier / noise_divisor:
    noise_divisor > 1 is a broken implementation whose audit must find `consistent: false`, 1 the honest
    one. `extra`: more "key=value" settings. The run is not attacked. Returns `folder`."""
    from unittest import mock

    from conftest import tiny_settings

    from lira_jax.shadow import gradients
    from lira_jax.train import main

    settings = tiny_settings(
        f"train.num_models={num_models}", f"train.epochs={epochs}", "train.batch_size=16", "model.norm=group",
        "train.dp_sgd=true", f"train.dp_noise_multiplier={noise_multiplier}", f"train.dp_sampling={sampling}",
        f"canaries.count={canaries}", f"canaries.kind={kind}", *extra,
    )  # fmt: skip
    broken = reduced_noise(gradients.private_gradient, noise_divisor)
    with mock.patch.object(gradients, "private_gradient", broken):
        assert main(["--out", str(folder), *settings, "--quiet", "--no-attack"]) == 0
    return folder
