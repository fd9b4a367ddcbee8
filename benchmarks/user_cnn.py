"""The digits CNN re-declared as a user would (own_recipe_throughput.py): the built-in net's layers, widths,
initialisers and operations, in the user's own linen and nnx modules, with model.arch = "user_cnn:NAME"
(benchmarks/ on PYTHONPATH). Its convolutions are the built-in's im2col form (models.conv_as_matmul), as
a user who copied the net would have them; `LinenFlaxConv` is the same net with flax's own nn.Conv.
"""

import functools

import flax.linen as nn
import jax.numpy as jnp
from flax import nnx

from lira_jax.shadow.models import conv_as_matmul, max_pool_2x2

WIDTH = 8


class LinenCNN(nn.Module):
    """models.CNN(width 8) as a user's linen module; with flax_conv, flax's own nn.Conv (bias-free, native
    convolutions: what a user would usually write)."""

    num_classes: int
    input_shape: tuple
    flax_conv: bool = False

    @nn.compact
    def __call__(self, x, train: bool):
        for stage, channels in enumerate((WIDTH, 2 * WIDTH, 4 * WIDTH)):
            if self.flax_conv:
                x = nn.Conv(channels, (3, 3), use_bias=False)(x)
            else:
                kernel = self.param(f"kernel_{stage}", nn.initializers.lecun_normal(), (3, 3, x.shape[-1], channels))
                x = conv_as_matmul(x, kernel)
            x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5)(x))
            if stage > 0:
                x = max_pool_2x2(x)
        x = nn.relu(nn.Dense(4 * WIDTH)(x.reshape((x.shape[0], -1))))
        return nn.Dense(self.num_classes)(x)


LinenFlaxConv = functools.partial(LinenCNN, flax_conv=True)  # other settings of a model: bound by a partial


class NnxCNN(nnx.Module):
    """models.CNN(width 8) as a user's flax.nnx module."""

    def __init__(self, num_classes: int, input_shape: tuple, *, rngs: nnx.Rngs):
        height, width, channels = input_shape
        widths = (channels, WIDTH, 2 * WIDTH, 4 * WIDTH)
        initializer = nnx.initializers.lecun_normal()
        self.kernels = nnx.List(
            [nnx.Param(initializer(rngs.params(), (3, 3, widths[i], widths[i + 1]))) for i in range(3)]
        )
        self.norms = nnx.List(
            [nnx.BatchNorm(features, momentum=0.9, epsilon=1e-5, rngs=rngs) for features in widths[1:]]
        )
        flat = (height // 4) * (width // 4) * 4 * WIDTH
        self.hidden = nnx.Linear(flat, 4 * WIDTH, rngs=rngs)
        self.head = nnx.Linear(4 * WIDTH, num_classes, rngs=rngs)

    def __call__(self, x):
        for stage, (kernel, norm) in enumerate(zip(self.kernels, self.norms, strict=True)):
            x = nnx.relu(norm(conv_as_matmul(x, kernel[...])))
            if stage > 0:
                x = max_pool_2x2(x)
        x = nnx.relu(self.hidden(x.reshape((x.shape[0], -1))))
        return self.head(x).astype(jnp.float32)
