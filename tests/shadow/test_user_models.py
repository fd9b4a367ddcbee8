"""A user's linen and nnx models (tests/recipes/user_nets.py) stacked along the model axis like the built-ins:
vmap, loop and host stepping alike, DP-SGD, bfloat16, RNG streams, Orbax checkpoints; bad ones refused."""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_engine import SHAPE, tiny_problem, train

from lira_jax.config import Config, TrainConfig, with_overrides
from lira_jax.errors import UserError
from lira_jax.shadow import engine, recipe_models
from lira_jax.shadow.checkpoints import ChunkCheckpoint
from lira_jax.shadow.optimizers import make_optimizer
from lira_jax.shadow.privacy import Privacy


def user_model(name: str, *settings: str):
    config = with_overrides(Config(), [f"model.arch='recipes.user_nets:{name}'", *settings])
    return recipe_models.build(config, 3, SHAPE)


@pytest.mark.parametrize("name", ["LinenCNN", "NnxCNN"])
def test_vmap_loop_and_host_stepping_train_a_user_model_alike(name):
    images, labels, keep = tiny_problem()
    model = user_model(name)
    config = TrainConfig(epochs=1, batch_size=8, learning_rate=0.05)
    vmapped, _ = train(model, config, keep, images, labels, np.arange(4))
    looped, _ = train(model, config, keep, images, labels, np.arange(4), loop_groups=1)
    hosted, _ = train(model, config, keep, images, labels, np.arange(4), host_mesh=engine.model_mesh(4))
    fresh = engine.init_states(model, make_optimizer(config), engine.model_keys(0, np.arange(4)), SHAPE)
    moved = jax.tree.map(lambda new, old: float(jnp.abs(new - old).max()), vmapped.params, fresh.params)
    assert max(jax.tree.leaves(moved)) > 1e-3
    assert jax.tree.leaves(vmapped.batch_stats), "BatchNorm statistics are carried"
    for other in (looped, hosted):
        for got, expected in zip(jax.tree.leaves(other), jax.tree.leaves(vmapped), strict=True):
            np.testing.assert_allclose(got, expected, rtol=2e-5, atol=2e-6)


def test_nnx_dropout_streams_follow_the_call_key_and_eval_is_deterministic():
    model = user_model("NnxCNN")
    variables = model.init(jax.random.key(0), jnp.zeros((1, *SHAPE)))
    images = jax.random.normal(jax.random.key(1), (4, *SHAPE))

    def train_logits(seed):
        return model.apply(
            variables, images, train=True, mutable=["batch_stats"], rngs={"dropout": jax.random.key(seed)}
        )[0]

    np.testing.assert_array_equal(train_logits(2), train_logits(2))
    assert not np.array_equal(train_logits(2), train_logits(3))
    np.testing.assert_array_equal(
        model.apply(variables, images, train=False), model.apply(variables, images, train=False)
    )


@pytest.mark.parametrize("name", ["LinenCNN", "NnxCNN"])
def test_bfloat16_computes_in_bfloat16_and_keeps_float32_state(name):
    model = user_model(name, "train.precision='bfloat16'")
    images, labels, keep = tiny_problem()
    states, metrics = train(model, TrainConfig(epochs=1, batch_size=8), keep, images, labels, np.arange(2))
    assert {leaf.dtype for leaf in jax.tree.leaves((states.params, states.batch_stats))} == {jnp.dtype(jnp.float32)}
    assert np.isfinite(metrics.loss).all()
    one = jax.tree.map(lambda leaf: leaf[0], states)
    logits = model.apply({"params": one.params, "batch_stats": one.batch_stats}, images[:2], train=False)
    assert logits.dtype == jnp.float32
    jaxpr = jax.make_jaxpr(
        lambda: model.apply({"params": one.params, "batch_stats": one.batch_stats}, images[:2], train=False)
    )()
    assert "bf16" in str(jaxpr)


@pytest.mark.parametrize("name", ["LinenMLP", "nnx_mlp"])
def test_dp_sgd_trains_a_user_model_without_batch_statistics(name):
    images, labels, keep = tiny_problem()
    model = user_model(name, "train.dp_sgd=true")
    states, metrics = train(
        model, TrainConfig(epochs=1, batch_size=8), keep, images, labels, np.arange(2), privacy=Privacy(1.0, 1.0)
    )
    assert np.isfinite(metrics.loss).all() and not jax.tree.leaves(states.batch_stats)


def test_an_nnx_models_stacked_state_goes_through_an_orbax_checkpoint(tmp_path: Path):
    model = user_model("NnxCNN")
    optimizer = make_optimizer(TrainConfig(optimizer="adam"))
    states = engine.init_states(model, optimizer, engine.model_keys(0, np.arange(2)), SHAPE)
    checkpoint = ChunkCheckpoint(tmp_path, np.arange(2))
    checkpoint.save(1, states, {})
    abstract = jax.tree.map(lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=leaf.sharding), states)
    epoch, restored, _ = checkpoint.restore(abstract)
    assert epoch == 1 and jax.tree.structure(restored) == jax.tree.structure(states)
    for got, expected in zip(jax.tree.leaves(restored), jax.tree.leaves(states), strict=True):
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize(
    ("name", "settings", "message"),
    [
        ("NOT_CALLABLE", (), "NOT_CALLABLE is a int, not callable"),
        ("Missing", (), "recipes.user_nets has no attribute 'Missing'"),
        ("WrongOutput", (), "returns (2, 4) on a batch of shape (2, 8, 8, 1) in eval mode"),
        ("returns_array", (), "returned a ArrayImpl, not a flax.linen.Module"),
        ("NnxCounter", (), "its state calls is a Variable"),
        ("NnxText", (), "cannot be built abstractly (its state must be JAX arrays)"),
        ("LinenCNN", ("train.dp_sgd=true",), "train.dp_sgd cannot train model recipes.user_nets:LinenCNN"),
        ("NnxCNN", ("train.dp_sgd=true",), "its batch statistics (BatchNorm)"),
        ("LinenMLP", ("model.conv='matmul'",), "model.conv = 'matmul' applies to the built-in conv nets"),
    ],
)
def test_a_bad_user_model_is_one_user_error(name, settings, message):
    with pytest.raises(UserError) as raised:
        user_model(name, *settings)
    assert message in str(raised.value)


def test_a_module_that_does_not_import_is_one_user_error():
    config = with_overrides(Config(), ["model.arch='no_such_package.nets:Net'"])
    with pytest.raises(UserError, match="module 'no_such_package.nets' does not import .* is it on PYTHONPATH"):
        recipe_models.model_source(config)
