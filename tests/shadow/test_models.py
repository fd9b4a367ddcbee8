import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lira_jax.config import CHOICES, ModelConfig
from lira_jax.errors import UserError
from lira_jax.shadow.models import Conv, build_model, max_pool_2x2
from lira_jax.shadow.recipe_models import BUILTIN_MODELS


@pytest.mark.parametrize(("size", "stride", "height"), [(3, 1, 8), (3, 2, 8), (3, 2, 7), (1, 2, 8), (1, 1, 5)])
def test_matmul_conv_equals_native(size, stride, height):
    images = jax.random.normal(jax.random.key(0, impl="rbg"), (2, height, height + 1, 3))
    native = Conv(5, size, stride)
    variables = native.init(jax.random.key(1, impl="rbg"), images)
    expected = native.apply(variables, images)
    got = Conv(5, size, stride, matmul=True).apply(variables, images)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_max_pool_matches_flax():
    import flax.linen as nn

    x = jax.random.normal(jax.random.key(0, impl="rbg"), (2, 7, 6, 3))
    np.testing.assert_array_equal(max_pool_2x2(x), nn.max_pool(x, (2, 2), strides=(2, 2)))


@pytest.mark.parametrize(
    ("arch", "shape"),
    [
        ("cnn", (8, 8, 1)),
        ("cnn", (32, 32, 3)),
        ("fastnet", (28, 28, 1)),
        ("fastnet", (32, 32, 3)),
        ("resnet18", (32, 32, 3)),
        ("wrn", (32, 32, 3)),
    ],
)
def test_models_give_logits(arch, shape):
    config = ModelConfig(arch=arch, width=8 if arch != "resnet18" else 4, depth=10, widen=1)
    model = build_model(config, 7, shape, jnp.float32, "matmul")
    images = jnp.ones((2, *shape))
    variables = model.init(jax.random.key(0, impl="rbg"), images, train=False)
    assert "batch_stats" in variables
    logits = model.apply(variables, images, train=False)
    assert logits.shape == (2, 7) and logits.dtype == jnp.float32


def test_bfloat16_compute_keeps_float32_parameters():
    model = build_model(ModelConfig(width=4), 10, (8, 8, 1), jnp.bfloat16, "matmul")
    variables = model.init(jax.random.key(0, impl="rbg"), jnp.ones((1, 8, 8, 1)), train=False)
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(variables))
    assert model.apply(variables, jnp.ones((2, 8, 8, 1)), train=False).dtype == jnp.float32


def test_too_small_images_are_refused():
    with pytest.raises(UserError, match="at least 8x8"):
        build_model(ModelConfig(arch="resnet18"), 10, (4, 4, 1), jnp.float32, "matmul")


def test_every_configurable_architecture_is_built():
    """config.CHOICES lists the built-in names users may give; recipe_models.BUILTIN_MODELS builds exactly those."""
    assert set(BUILTIN_MODELS) == set(CHOICES["model.arch"])


@pytest.mark.parametrize("arch", ["cnn", "resnet18"])
def test_bfloat16_classifier_head_runs_in_float32(arch):
    """Under bfloat16 only the body is bf16: the last matmul (the classifier) takes float32 operands."""
    model = build_model(ModelConfig(arch=arch, width=4), 10, (8, 8, 1), jnp.bfloat16, "matmul")
    variables = model.init(jax.random.key(0, impl="rbg"), jnp.ones((1, 8, 8, 1)), train=False)
    jaxpr = jax.make_jaxpr(lambda images: model.apply(variables, images, train=False))(jnp.ones((2, 8, 8, 1)))
    matmuls = [equation for equation in jaxpr.eqns if equation.primitive.name == "dot_general"]
    assert matmuls and all(var.aval.dtype == jnp.float32 for var in matmuls[-1].invars)
    assert any(var.aval.dtype == jnp.bfloat16 for equation in matmuls[:-1] for var in equation.invars)
