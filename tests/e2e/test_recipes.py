"""Every config in configs/ trains for one epoch at small size through the command line, keeping its
architecture, augmentations and views; the data sets that cannot be read here are replaced by random
arrays of the same shape and number of classes; plus the bad inputs that depend on the image size."""

import json
import tomllib
from pathlib import Path

import numpy as np
import pytest
from conftest import CONFIGS

from lira_jax.train import main

# Shrinks that keep what makes each recipe itself (arch, augmentations, views, optimiser).
SMALL = {
    "cnn": ["model.width=4"],
    "fastnet": ["model.width=4"],
    "resnet18": ["model.width=4"],
    "wrn": ["model.depth=10", "model.widen=1"],
    "mlp": ["model.hidden=[8]"],
}
NUM_EXAMPLES = 48


def image_shape_and_classes(config_path: Path) -> tuple[tuple[int, ...], int] | None:
    """The shape and class count of the data set a config names; None for digits and synthetic data, which
    are always here."""
    source = tomllib.loads(config_path.read_text()).get("data", {}).get("source", "digits")
    if source == "digits" or source.startswith("synthetic:"):
        return None
    if "letter" in source:
        return (16,), 26  # a table: examples/rda_to_npz.py's LetterRecognition
    if "cifar100" in source:
        return (32, 32, 3), 100
    if "cifar10" in source:
        return (32, 32, 3), 10
    return (28, 28, 1), 10  # mnist and fashion_mnist, from TFDS or IDX files


@pytest.fixture(scope="module")
def stand_in_data(tmp_path_factory) -> dict[tuple[tuple[int, int, int], int], Path]:
    """Random uint8 images (or a float table) with the labels cycling through every class, as npz (train and
    test splits)."""
    folder = tmp_path_factory.mktemp("data")
    paths = {}
    rng = np.random.default_rng(0)
    for shape, classes in [((32, 32, 3), 10), ((32, 32, 3), 100), ((28, 28, 1), 10), ((16,), 26)]:
        path = folder / f"{'x'.join(map(str, shape))}_{classes}.npz"
        half = NUM_EXAMPLES // 2
        images = rng.integers(0, 256, (NUM_EXAMPLES, *shape), dtype=np.uint8).astype(
            np.float32 if len(shape) == 1 else np.uint8
        )
        labels = np.arange(NUM_EXAMPLES) % classes
        np.savez(path, x=images[:half], y=labels[:half], x_test=images[half:], y_test=labels[half:])
        paths[shape, classes] = path
    return paths


def small_overrides(config_path: Path, stand_in_data: dict) -> list[str]:
    arch = tomllib.loads(config_path.read_text()).get("model", {}).get("arch", "cnn")
    data = image_shape_and_classes(config_path)
    assignments = [
        *SMALL[arch],
        "model.conv='native'",  # compiles faster than the im2col form; its speed does not matter here
        "train.num_models=2",
        "train.models_per_step='auto'",
        "train.epochs=1",
        "train.warmup_epochs=0",
        "train.batch_size=8",
        "query.batch_size=16",
        f"data.limit={NUM_EXAMPLES}",
    ]
    if data is not None:
        assignments += [f"data.source='npz:{stand_in_data[data]}'", "data.splits='train+test'"]
    return [part for assignment in assignments for part in ("--set", assignment)]


@pytest.mark.parametrize("config_path", sorted(CONFIGS.glob("*.toml")), ids=lambda path: path.stem)
def test_every_config_trains_one_small_epoch(config_path, stand_in_data, tmp_path):
    out = tmp_path / "run"
    argv = ["--config", str(config_path), "--out", str(out), *small_overrides(config_path, stand_in_data)]
    assert main([*argv, "--no-attack", "--quiet"]) == 0
    config = tomllib.loads(config_path.read_text())
    num_views = 18 if config["query"]["views"] == ["mirror_shifts:4"] else len(config["query"]["views"])
    scores = np.load(out / "scores.npy", mmap_mode="r")
    assert scores.shape == (2, NUM_EXAMPLES, num_views) and np.isfinite(scores).all()
    run_config = tomllib.loads((out / "config.toml").read_text())
    for section, key in [("model", "arch"), ("train", "augment"), ("query", "views")]:
        assert run_config[section][key] == config.get(section, {}).get(key, run_config[section][key])
    assert all(record["done"] for record in json.loads((out / "models.json").read_text())["models"])


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--set", "train.augment=['flip', 'sharpen']"], "unknown augmentation 'sharpen'"),
        (["--set", "train.augment=['crop:8']"], "'crop:8': reflect padding must be smaller than the 8x8 image"),
        (["--set", "train.augment=['cutout:9']"], "the cutout square must be 1 to 8 pixels wide"),
        (["--set", "query.views=['mirror_shifts:8']"], "'mirror_shifts:8': shifts must be smaller than the 8x8"),
        (["--set", "query.views=['identity', 'tilt']"], "unknown query view 'tilt'"),
    ],
)
def test_what_the_image_size_rules_out_is_one_line_and_exit_2(tmp_path, capsys, arguments, message):
    out = tmp_path / "run"
    assert main(["--out", str(out), "--set", "data.limit=40", "--set", "train.num_models=2", *arguments]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error:") and "\n" not in error and message in error
    assert not out.exists()


def test_images_too_small_for_the_model_are_one_line_and_exit_2(tmp_path, capsys):
    data = tmp_path / "tiny_images.npz"
    np.savez(data, x=np.zeros((20, 6, 6, 3), np.uint8), y=np.arange(20) % 10)
    out = tmp_path / "run"
    arguments = ["--out", str(out), "--set", f"data.source='npz:{data}'", "--set", "model.arch='fastnet'"]
    assert main([*arguments, "--set", "train.num_models=2"]) == 2
    error = capsys.readouterr().err.strip()
    assert error == "error: model.arch = 'fastnet' needs images of at least 8x8, got 6x6"
    assert not out.exists()
