"""The user's own recipe through the command line and from Python (in-process, tiny): the run records the
model's source and refuses a resume once it changed, unless accepted; train_shadows writes the same run
folder from arrays, a callable model and an optax transformation; every bad recipe is one line, exit 2,
nothing written."""

import json

import numpy as np
import optax
import pytest
from conftest import tiny_settings
from hostile import fails_cleanly, refused, snapshot
from recipes.user_nets import NnxCNN

import lira_jax
from lira_jax.train import main

MODEL_SOURCE = """
import flax.linen as nn


class Net(nn.Module):
    num_classes: int
    input_shape: tuple

    @nn.compact
    def __call__(self, x, train: bool):
        return nn.Dense(self.num_classes)(nn.tanh(nn.Dense(16)(x.reshape(x.shape[0], -1))))
"""


def test_a_users_model_trains_in_chunks_records_its_source_and_a_changed_source_is_refused_unless_accepted(
    tmp_path, monkeypatch, capsys
):
    package = tmp_path / "package"
    package.mkdir()
    source = package / "own_recipe_net.py"
    source.write_text(MODEL_SOURCE)
    monkeypatch.syspath_prepend(str(package))
    out = tmp_path / "run"
    settings = ["model.arch='own_recipe_net:Net'", "train.optimizer='adam'", "vary.learning_rate=[0.001, 0.01]"]
    argv = ["--out", out, *tiny_settings(*settings, "train.models_per_step=2"), "--quiet"]
    assert main([str(part) for part in [*argv, "--no-attack"]]) == 0
    assert 'arch = "own_recipe_net:Net"' in (out / "config.toml").read_text()
    recipe = json.loads((out / "recipe.json").read_text())
    assert recipe["model"]["file"] == str(source) and recipe["model"]["api"] == "linen"
    records = json.loads((out / "models.json").read_text())["models"]
    assert all(record["done"] and record["chunk_size"] == 2 for record in records)
    assert len({record["hyperparameters"]["learning_rate"] for record in records}) == 4
    capsys.readouterr()

    source.write_text(MODEL_SOURCE + "# tuned\n")
    refused(
        out, main, [*argv, "--no-attack"], rf"was trained with model own_recipe_net:Net from {source} .*changed", capsys
    )
    assert main([str(part) for part in [*argv, "--no-attack", "--accept-model-change"]]) == 0
    accepted = json.loads((out / "recipe.json").read_text())
    assert accepted["model"]["sha256"] != recipe["model"]["sha256"]
    assert accepted["accepted"][0]["model"] == recipe["model"] and accepted["accepted"][0]["models_done"] == "0:4"


def test_train_shadows_writes_the_command_lines_run_folder_from_arrays_a_model_and_an_optimizer(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (120, 8, 8, 1), dtype=np.uint8)
    y = np.arange(120) % 3
    out = tmp_path / "run"
    settings = dict(num_models=4, epochs=2, **{"query.views": ["identity", "mirror"]})
    adam = optax.adam(3e-3)
    assert lira_jax.train_shadows(x, y, model=NnxCNN, out=out, optimizer=adam, quiet=True, **settings) == out
    assert {"metrics.json", "scores.npy", "keep.npy", "recipe.json", "config.toml"} <= {p.name for p in out.iterdir()}
    config = (out / "config.toml").read_text()
    assert 'arch = "recipes.user_nets:NnxCNN"' in config and 'optimizer = "custom"' in config
    assert 'source = "arrays:' in config and np.load(out / "scores.npy").shape == (4, 120, 2)
    before = snapshot(out)
    with pytest.raises(lira_jax.UserError, match="data.source differ"):
        lira_jax.train_shadows(x[::-1], y, model=NnxCNN, out=out, optimizer=adam, **settings)
    with pytest.raises(lira_jax.UserError, match="custom optax transformation"):
        lira_jax.train_shadows(x, y, model=NnxCNN, out=out, optimizer=optax.adam(1e-2), **settings)
    assert snapshot(out) == before
    # Resumed with what it was given (an equal transformation): every model is done, nothing trains.
    assert lira_jax.train_shadows(x, y, model=NnxCNN, out=out, optimizer=optax.adam(3e-3), attack=False, **settings)


BAD_RECIPES = [
    (["train.optimizer='adamax'"], r"train.optimizer must be one of sgd, adam, adamw, lamb, lion, rmsprop"),
    (["train.schedule='exponential'"], r"train.schedule must be one of cosine, constant, linear, step, onecycle"),
    (["train.optimizer='adam'", "train.b1=1.5"], r"train.b1 must be a finite number in \[0, 1\), got 1.5"),
    (["train.b2=0.9"], r"train.b2 does not apply to train.optimizer = 'sgd'"),
    (["train.optimizer='custom'"], r"train.optimizer = 'custom' names an optax transformation given from Python"),
    (["train.step_boundaries=[0.8, 0.5]"], r"train.step_boundaries must be increasing fractions"),
    (["model.arch='no_such_package.nets:Net'"], r"module 'no_such_package.nets' does not import"),
    (["model.arch='recipes.user_nets:NOT_CALLABLE'"], r"NOT_CALLABLE is a int, not callable"),
    (["model.arch='recipes.user_nets:WrongOutput'"], r"returns \(2, 11\) on a batch of shape \(2, 8, 8, 1\)"),
    (["model.arch='recipes.user_nets:NnxText'"], r"cannot be built abstractly \(its state must be JAX arrays\)"),
    (["model.arch='recipes.user_nets:NnxCounter'"], r"its state calls is a Variable"),
    (["model.arch='cnn2'"], r"model.arch must be one of cnn, fastnet, .*, transformer or 'package.module:NAME'"),
]


@pytest.mark.parametrize(("settings", "message"), BAD_RECIPES, ids=[case[1][:40] for case in BAD_RECIPES])
def test_a_bad_recipe_is_one_line_and_writes_nothing(tmp_path, settings, message, capsys):
    out = tmp_path / "run"
    fails_cleanly(main, ["--out", out, *tiny_settings(*settings), "--quiet"], message, capsys)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_a_run_of_arrays_from_python_cannot_resume_from_the_command_line(tmp_path, capsys):
    fails_cleanly(
        main,
        ["--out", tmp_path / "run", "--set", "data.source='arrays:0123'"],
        r"data.source = 'arrays:0123' names arrays given to lira_jax.train_shadows from Python",
        capsys,
    )
    assert list(tmp_path.iterdir()) == []
