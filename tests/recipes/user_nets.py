"""Users' own Flax models for the tests, as `model.arch = "recipes.user_nets:NAME"` (tests/ on sys.path).

Each is called as NAME(num_classes=C, input_shape=S) (linen) or NAME(num_classes=C, input_shape=S,
rngs=...) (nnx), the contract of lira_jax/shadow/recipe_models.py; some break it on purpose.
"""

import math

import flax.linen as nn
import jax.numpy as jnp
from flax import nnx


class LinenCNN(nn.Module):
    """A conv, BatchNorm, dropout and a dense head: linen with both of Flax's usual extras."""

    num_classes: int
    input_shape: tuple

    @nn.compact
    def __call__(self, x, train: bool):
        x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9)(nn.Conv(4, (3, 3))(x)))
        x = nn.Dropout(0.1, deterministic=not train)(x.mean(axis=(1, 2)))
        return nn.Dense(self.num_classes)(x)


class LinenMLP(nn.Module):
    """No cross-example state: DP-SGD may train it."""

    num_classes: int
    input_shape: tuple

    @nn.compact
    def __call__(self, x, train: bool):
        x = nn.tanh(nn.Dense(16)(x.reshape(x.shape[0], -1)))
        return nn.Dense(self.num_classes)(nn.LayerNorm()(x))


class NnxCNN(nnx.Module):
    """flax.nnx: a conv, BatchNorm, dropout (its own RNG stream) and a linear head."""

    def __init__(self, num_classes: int, input_shape: tuple, *, rngs: nnx.Rngs):
        self.conv = nnx.Conv(input_shape[-1], 4, (3, 3), rngs=rngs)
        self.norm = nnx.BatchNorm(4, momentum=0.9, rngs=rngs)
        self.dropout = nnx.Dropout(0.1, rngs=rngs)
        self.head = nnx.Linear(4, num_classes, rngs=rngs)

    def __call__(self, x):
        x = nnx.relu(self.norm(self.conv(x)))
        return self.head(self.dropout(x.mean(axis=(1, 2))))


class NnxMLP(nnx.Module):
    def __init__(self, num_classes: int, input_shape: tuple, *, rngs: nnx.Rngs):
        self.hidden = nnx.Linear(math.prod(input_shape), 16, rngs=rngs)
        self.head = nnx.Linear(16, num_classes, rngs=rngs)

    def __call__(self, x):
        return self.head(nnx.tanh(self.hidden(x.reshape(x.shape[0], -1))))


def nnx_mlp(num_classes: int, input_shape: tuple, rngs: nnx.Rngs) -> NnxMLP:
    """A module-level function taking rngs: the nnx kind too."""
    return NnxMLP(num_classes, input_shape, rngs=rngs)


# Broken recipes (one error line each).
NOT_CALLABLE = 3


class WrongOutput(nn.Module):
    """Logits with one class too many."""

    num_classes: int
    input_shape: tuple

    @nn.compact
    def __call__(self, x, train: bool):
        return nn.Dense(self.num_classes + 1)(x.reshape(x.shape[0], -1))


class NnxCounter(nnx.Module):
    """State of a kind the engine neither trains nor carries (a plain nnx.Variable)."""

    def __init__(self, num_classes: int, input_shape: tuple, *, rngs: nnx.Rngs):
        self.head = nnx.Linear(math.prod(input_shape), num_classes, rngs=rngs)
        self.calls = nnx.Variable(jnp.zeros((), jnp.int32))

    def __call__(self, x):
        return self.head(x.reshape(x.shape[0], -1))


class NnxText(nnx.Module):
    """State that is text, not an array: it cannot be stacked along the model axis."""

    def __init__(self, num_classes: int, input_shape: tuple, *, rngs: nnx.Rngs):
        self.head = nnx.Linear(math.prod(input_shape), num_classes, rngs=rngs)
        self.label = nnx.BatchStat("unstackable")

    def __call__(self, x):
        return self.head(x.reshape(x.shape[0], -1))


def returns_array(num_classes: int, input_shape: tuple):
    return jnp.zeros(num_classes)
