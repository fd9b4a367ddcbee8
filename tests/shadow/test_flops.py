"""flops.py: the FLOPs of a training step counted from the traced program, the same on every backend,
against hand counts of single operations and the textbook count of ResNet-18."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lira_jax.config import ModelConfig
from lira_jax.shadow import flops
from lira_jax.shadow.models import build_model


def counted(function, *shapes) -> float:
    arguments = [jax.ShapeDtypeStruct(shape, jnp.float32) for shape in shapes]
    return flops.jaxpr_flops(jax.make_jaxpr(function)(*arguments).jaxpr)


def conv(images, kernel, stride=1):
    return jax.lax.conv_general_dilated(
        images, kernel, (stride, stride), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )


@pytest.mark.parametrize("stride", [1, 2])
def test_a_convolution_and_both_its_gradients_cost_its_multiply_adds_each(stride):
    batch, side, channels_in, channels_out = 2, 8, 3, 5
    shapes = ((batch, side, side, channels_in), (3, 3, channels_in, channels_out))
    multiply_adds = batch * (side // stride) ** 2 * 9 * channels_in * channels_out  # padding taps included
    strided = functools.partial(conv, stride=stride)
    assert counted(strided, *shapes) == 2 * multiply_adds
    total = counted(jax.grad(lambda x, w: strided(x, w).sum(), argnums=(0, 1)), *shapes)
    assert total == 3 * 2 * multiply_adds  # forward, input gradient, kernel gradient


def test_matrix_products_scans_and_conds_are_counted_as_they_run():
    assert counted(jnp.matmul, (3, 4), (4, 5)) == 2 * 3 * 4 * 5
    assert counted(lambda a, b: jnp.einsum("bij,bjk->bik", a, b), (7, 3, 4), (7, 4, 5)) == 7 * 2 * 3 * 4 * 5

    def scanned(a, b):
        return jax.lax.scan(lambda carry, _: (carry @ b, None), a, length=6)[0]

    assert counted(scanned, (4, 4), (4, 4)) == 6 * 2 * 4**3

    def branches(a, b):
        return jax.lax.cond(a.sum() > 0, lambda: a @ b @ b, lambda: a @ b)

    assert counted(branches, (4, 4), (4, 4)) == 2 * 2 * 4**3  # the costlier branch


def test_native_and_matmul_convolutions_count_alike():
    shape = (28, 28, 1)
    native, matmul = (
        build_model(ModelConfig(arch="fastnet", width=8), 10, shape, jnp.float32, conv) for conv in ("native", "matmul")
    )
    assert flops.forward_flops_per_example(native, shape) == flops.forward_flops_per_example(matmul, shape)


def test_resnet18_with_the_cifar_stem_trains_at_six_times_its_multiply_adds(make_trainer):
    """0.555 G multiply-adds per 32x32 image (3.33 GFLOP forward + backward): the figure the device check's
    utilisation stands on. Only the stem's input gradient is not computed (nothing needs it)."""
    trainer = make_trainer(arch="resnet18", width=64, side=32, channels=3)
    per_example = trainer.train_flops_per_example
    assert per_example == pytest.approx(3.33e9, rel=0.01)
    forward = flops.forward_flops_per_example(trainer.plan.model, (32, 32, 3))
    assert per_example == pytest.approx(3 * forward, rel=0.01)


@pytest.fixture
def make_trainer():
    from lira_jax import config as config_lib
    from lira_jax.shadow import engine
    from lira_jax.shadow.data import Dataset, make_keep
    from lira_jax.shadow.trainer import ChunkTrainer, make_plan

    def build(arch: str, width: int, side: int, channels: int) -> ChunkTrainer:
        config = config_lib.with_overrides(
            config_lib.Config(), [f"model.arch={arch}", f"model.width={width}", "train.batch_size=8"]
        )
        count = 16
        rng = np.random.default_rng(0)
        images = rng.standard_normal((count, side, side, channels), dtype=np.float32)
        stats = (np.zeros(channels, np.float32), np.ones(channels, np.float32))
        dataset = Dataset(
            images, np.arange(count, dtype=np.int32) % 10, 10, "synthetic", np.zeros(count, np.int8), *stats
        )
        return ChunkTrainer(make_plan(config, dataset), dataset, make_keep(2, count, seed=0), engine.model_mesh(2))

    return build
