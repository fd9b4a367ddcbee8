"""The built-in nets for tables (mlp) and token ids (transformer), and how the data configures them."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lira_jax.config import ModelConfig
from lira_jax.errors import UserError
from lira_jax.shadow.models import build_model, fit_to_data

KEY = jax.random.key(0, impl="rbg")


def test_the_default_mlp_is_shokris_purchase_net():
    model = build_model(ModelConfig(arch="mlp"), 100, (600,), jnp.float32, "native")
    variables = jax.eval_shape(lambda: model.init(KEY, jnp.ones((1, 600)), train=False))
    kernels = [variables["params"][f"Dense_{index}"]["kernel"].shape for index in range(5)]
    assert kernels == [(600, 1024), (1024, 512), (512, 256), (256, 128), (128, 100)]
    assert model.activation == "tanh" and "batch_stats" not in variables


@pytest.mark.parametrize("precision", [jnp.float32, jnp.bfloat16])
def test_mlp_gives_float32_logits_and_flattens_images(precision):
    config = ModelConfig(arch="mlp", hidden=(8, 4), activation="relu")
    model = build_model(config, 3, (5,), precision, "native")
    variables = model.init(KEY, jnp.ones((1, 5)), train=False)
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(variables))
    logits = model.apply(variables, jnp.ones((2, 5)), train=False)
    assert logits.shape == (2, 3) and logits.dtype == jnp.float32
    images = build_model(config, 3, (4, 4, 1), precision, "native")
    assert images.apply(
        images.init(KEY, jnp.ones((1, 4, 4, 1)), train=False), jnp.ones((2, 4, 4, 1)), train=False
    ).shape == (2, 3)


@pytest.mark.parametrize(("pooling", "precision"), [("mean", jnp.float32), ("cls", jnp.bfloat16)])
def test_transformer_takes_token_ids_and_gives_float32_logits(pooling, precision):
    tokens = np.array([[0, 3, 9, 2], [1, 1, 1, 4], [5, 6, 7, 8]])
    config = fit_to_data(
        ModelConfig(arch="transformer", embed_dim=8, heads=2, layers=2, pooling=pooling), "tokens", tokens
    )
    assert config.vocab_size == 10  # the largest id + 1
    model = build_model(config, 4, (4,), precision, "native")
    variables = jax.jit(lambda: model.init(KEY, jnp.zeros((1, 4), jnp.int32), train=False))()
    apply = jax.jit(lambda variables, tokens: model.apply(variables, tokens, train=True, rngs={"dropout": KEY}))
    logits = apply(variables, jnp.asarray(tokens, jnp.int32))
    assert logits.shape == (3, 4) and logits.dtype == jnp.float32 and np.isfinite(logits).all()
    assert variables["params"]["positions"].shape == (4 + (pooling == "cls"), 8)


@pytest.mark.parametrize(
    ("config", "kind", "inputs", "message"),
    [
        (
            ModelConfig(arch="transformer", vocab_size=5),
            "tokens",
            np.array([[0, 4], [5, 1]]),
            "token id 5 is not below model.vocab_size = 5 \\(first in example 1\\)",
        ),
        (
            ModelConfig(arch="cnn"),
            "table",
            np.zeros((2, 3)),
            "model.arch = 'cnn' does not take table .*use model.arch = 'mlp'",
        ),
        (
            ModelConfig(arch="mlp"),
            "tokens",
            np.zeros((2, 3), int),
            "does not take tokens .*use model.arch = 'transformer'",
        ),
        (ModelConfig(arch="transformer"), "table", np.zeros((2, 3)), "'transformer' does not take table"),
        (ModelConfig(arch="transformer"), "images", np.zeros((2, 3, 3, 1)), "does not take images"),
    ],
)
def test_an_arch_and_data_that_do_not_fit_are_one_line(config, kind, inputs, message):
    with pytest.raises(UserError, match=message):
        fit_to_data(config, kind, inputs)


def test_a_vocabulary_that_is_set_is_kept():
    config = fit_to_data(ModelConfig(arch="transformer", vocab_size=100), "tokens", np.array([[0, 4]]))
    assert config.vocab_size == 100
