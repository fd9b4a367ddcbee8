"""Flax models for the shadow models: a small CNN, a speed-run net, ResNet-18 with the CIFAR stem, and WRN;
for tables and token ids the MLP and Transformer of shadow/nets_tabular.py.

Every model is a plain `flax.linen` module over one model's parameters; the engine stacks many of them
along a leading model axis with `jax.vmap`, so BatchNorm statistics stay per model. Call signature:
`model.apply(variables, images: float[B, H, W, C], train: bool) -> logits: float32[B, num_classes]`.
"""

import dataclasses
import math
from collections.abc import Callable
from functools import partial
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from lira_jax.config import ModelConfig
from lira_jax.errors import UserError
from lira_jax.shadow.nets_tabular import MLP, Transformer

Dtype = Any


class Conv(nn.Module):
    """A bias-free convolution with SAME padding and Flax's `nn.Conv` parameters (`kernel`: [k, k, in, out]).

    `matmul=True` computes it as im2col, patches [B, H', W', k*k*in] @ kernel [k*k*in, out]. Why: under vmap
    over models XLA turns a native convolution into a grouped one, and inside a loop body its CPU backend
    falls off its fast path (measured with jax 0.10 on a 2-core CPU: 9x and 54x slower than a plain loop
    over models), while a batched matmul stays at matmul speed. On GPUs the native form is the default.
    """

    features: int
    kernel_size: int = 3
    stride: int = 1
    dtype: Dtype = jnp.float32
    matmul: bool = False

    @nn.compact
    def __call__(self, x):
        size, stride = self.kernel_size, self.stride
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (size, size, x.shape[-1], self.features))
        x, kernel = x.astype(self.dtype), kernel.astype(self.dtype)
        if not self.matmul:
            pads = jax.lax.padtype_to_pads(x.shape[1:3], (size, size), (stride, stride), "SAME")
            return jax.lax.conv_general_dilated(
                x, kernel, (stride, stride), pads, dimension_numbers=("NHWC", "HWIO", "NHWC")
            )
        return conv_as_matmul(x, kernel, stride)


def conv_as_matmul(x: jax.Array, kernel: jax.Array, stride: int = 1) -> jax.Array:
    """A SAME-padded convolution as im2col: x [B, H, W, in], kernel [k, k, in, out] -> [B, H', W', out]."""
    size, features = kernel.shape[0], kernel.shape[-1]
    pads = jax.lax.padtype_to_pads(x.shape[1:3], (size, size), (stride, stride), "SAME")
    padded = jnp.pad(x, ((0, 0), *pads, (0, 0)))
    out_height, out_width = (-(-x.shape[1] // stride), -(-x.shape[2] // stride))
    patches = jnp.concatenate(
        [
            padded[
                :,
                i : i + (out_height - 1) * stride + 1 : stride,
                j : j + (out_width - 1) * stride + 1 : stride,
            ]
            for i in range(size)
            for j in range(size)
        ],
        axis=-1,
    )
    # As rows [B*H'*W', k*k*in]: the kernel's gradient is then one plain matmul. Left 4-D, XLA's CPU
    # backend transposed the patches for it (2.1 ms against 0.9 ms; the digits step 15% faster).
    rows = patches.reshape(-1, patches.shape[-1]) @ kernel.reshape(-1, features)
    return rows.reshape(*patches.shape[:-1], features)


def max_pool_2x2(x):
    """2x2 max-pool with stride 2 (VALID, as nn.max_pool) written as reshape + max: its gradient avoids
    XLA's select-and-scatter, about 2x faster on CPU."""
    batch, height, width, channels = x.shape
    x = x[:, : height - height % 2, : width - width % 2]
    return x.reshape(batch, height // 2, 2, width // 2, 2, channels).max(axis=(2, 4))


class GroupNorm(nn.Module):
    """GroupNorm over gcd(channels, 16) groups: no statistics shared across examples, so per-example
    gradients exist (DP-SGD needs them); 16 groups as in De et al. 2022's private WRNs."""

    scale_init: Callable[..., Any] = nn.initializers.ones
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        groups = math.gcd(x.shape[-1], 16)
        return nn.GroupNorm(num_groups=groups, epsilon=1e-5, dtype=self.dtype, scale_init=self.scale_init)(x)


def _norm(kind: str, train: bool, dtype: Dtype) -> Callable[..., Any]:
    """A normalisation layer factory: `kind` "batch" (BatchNorm) or "group" (GroupNorm)."""
    if kind == "group":
        return partial(GroupNorm, dtype=dtype)
    # momentum 0.9 (not Flax's 0.99): short shadow-model runs need running statistics that catch up.
    return partial(nn.BatchNorm, use_running_average=not train, momentum=0.9, epsilon=1e-5, dtype=dtype)


def _head(features, num_classes: int):
    """The classifier's dense layer, computed in float32 whatever the compute dtype (under bfloat16 the
    logits, and so φ, keep float32's precision): float[B, F] -> logits float32[B, num_classes].

    Called inside a parent's compact __call__, so its layer is the parent's submodule."""
    return nn.Dense(num_classes, dtype=jnp.float32)(features.astype(jnp.float32))


def _pooled_classifier(features, num_classes: int, dropout: float, train: bool):
    """Global average pool (in float32), dropout, dense: float[B, H, W, F] -> logits float32[B, num_classes]."""
    pooled = nn.Dropout(dropout, deterministic=not train)(jnp.mean(features.astype(jnp.float32), axis=(1, 2)))
    return _head(pooled, num_classes)


class CNN(nn.Module):
    """Three 3x3 conv layers (width, 2 width, 4 width) with BatchNorm, two 2x2 max-pools, a dense head.

    For 8x8 to 32x32 inputs: the default digits model (width 8) has 10,402 parameters.
    """

    num_classes: int
    width: int = 8
    dropout: float = 0.0
    dtype: Dtype = jnp.float32
    matmul_conv: bool = False
    norm: str = "batch"  # batch | group

    @nn.compact
    def __call__(self, images, train: bool):
        norm = _norm(self.norm, train, self.dtype)
        conv = partial(Conv, kernel_size=3, dtype=self.dtype, matmul=self.matmul_conv)
        x = images.astype(self.dtype)
        for stage, channels in enumerate((self.width, 2 * self.width, 4 * self.width)):
            x = nn.relu(norm()(conv(channels)(x)))
            if stage > 0:
                x = max_pool_2x2(x)
        x = x.reshape((x.shape[0], -1))
        x = nn.relu(nn.Dense(4 * self.width, dtype=self.dtype)(x))
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
        return _head(x, self.num_classes)


class FastNet(nn.Module):
    """A small net in the style of the CIFAR-10 speed runs (Keller Jordan's airbench, Page's DAWNBench
    ResNet): a 3x3 stem of width / 2 channels, then three blocks of width, 2 width, 4 width channels, each
    conv -> 2x2 max-pool -> BN -> ReLU -> conv -> BN -> ReLU; global max-pool and a dense head.

    Why: pooling right after each block's first conv keeps two thirds of the convolutions at a quarter of
    the resolution; width 16 costs about 4 M multiply-adds per 28x28 image. Needs images of at least 8x8.
    """

    num_classes: int
    width: int = 16
    dropout: float = 0.0
    dtype: Dtype = jnp.float32
    matmul_conv: bool = False
    norm: str = "batch"  # batch | group

    @nn.compact
    def __call__(self, images, train: bool):
        norm = _norm(self.norm, train, self.dtype)
        conv = partial(Conv, kernel_size=3, dtype=self.dtype, matmul=self.matmul_conv)
        x = nn.relu(norm()(conv(max(1, self.width // 2))(images.astype(self.dtype))))
        for channels in (self.width, 2 * self.width, 4 * self.width):
            x = nn.relu(norm()(max_pool_2x2(conv(channels)(x))))
            x = nn.relu(norm()(conv(channels)(x)))
        pooled = nn.Dropout(self.dropout, deterministic=not train)(jnp.max(x, axis=(1, 2)))
        return _head(pooled, self.num_classes)


class BasicBlock(nn.Module):
    """ResNet basic block (two 3x3 convs) with a 1x1 projection shortcut when the shape changes."""

    channels: int
    stride: int
    dtype: Dtype
    matmul_conv: bool
    norm: str

    @nn.compact
    def __call__(self, x, train: bool):
        norm = _norm(self.norm, train, self.dtype)
        conv = partial(Conv, dtype=self.dtype, matmul=self.matmul_conv)
        y = nn.relu(norm()(conv(self.channels, 3, self.stride)(x)))
        y = norm(scale_init=nn.initializers.zeros)(conv(self.channels, 3)(y))
        if self.stride != 1 or x.shape[-1] != self.channels:
            x = norm()(conv(self.channels, 1, self.stride)(x))
        return nn.relu(x + y)


class ResNet18(nn.Module):
    """ResNet-18 with the CIFAR stem: one 3x3 conv, no max-pool; stages of 64, 128, 256, 512 (x width/64)."""

    num_classes: int
    width: int = 64
    dropout: float = 0.0
    dtype: Dtype = jnp.float32
    matmul_conv: bool = False
    norm: str = "batch"  # batch | group

    @nn.compact
    def __call__(self, images, train: bool):
        norm = _norm(self.norm, train, self.dtype)
        x = Conv(self.width, 3, dtype=self.dtype, matmul=self.matmul_conv)(images)
        x = nn.relu(norm()(x))
        for stage in range(4):
            for block in range(2):
                stride = 2 if stage > 0 and block == 0 else 1
                x = BasicBlock(self.width * 2**stage, stride, self.dtype, self.matmul_conv, self.norm)(x, train)
        return _pooled_classifier(x, self.num_classes, self.dropout, train)


class WideBlock(nn.Module):
    """Pre-activation wide-ResNet block (Zagoruyko and Komodakis 2016)."""

    channels: int
    stride: int
    dtype: Dtype
    matmul_conv: bool
    norm: str

    @nn.compact
    def __call__(self, x, train: bool):
        norm = _norm(self.norm, train, self.dtype)
        conv = partial(Conv, dtype=self.dtype, matmul=self.matmul_conv)
        activated = nn.relu(norm()(x))
        y = conv(self.channels, 3, self.stride)(activated)
        y = conv(self.channels, 3)(nn.relu(norm()(y)))
        if self.stride != 1 or x.shape[-1] != self.channels:
            x = conv(self.channels, 1, self.stride)(activated)
        return x + y


class WideResNet(nn.Module):
    """WRN-depth-widen: three groups of (depth - 4) / 6 blocks with 16, 32, 64 channels times `widen`."""

    num_classes: int
    depth: int = 28
    widen: int = 2
    dropout: float = 0.0
    dtype: Dtype = jnp.float32
    matmul_conv: bool = False
    norm: str = "batch"  # batch | group

    @nn.compact
    def __call__(self, images, train: bool):
        blocks = (self.depth - 4) // 6
        x = Conv(16, 3, dtype=self.dtype, matmul=self.matmul_conv)(images)
        for group, channels in enumerate((16, 32, 64)):
            for block in range(blocks):
                stride = 2 if group > 0 and block == 0 else 1
                x = WideBlock(channels * self.widen, stride, self.dtype, self.matmul_conv, self.norm)(x, train)
        x = nn.relu(_norm(self.norm, train, self.dtype)()(x))
        return _pooled_classifier(x, self.num_classes, self.dropout, train)


# model.arch -> (module, smallest image side: 0 for the nets of other data); config.CHOICES["model.arch"]
# lists the same names (tested).
ARCHITECTURES: dict[str, tuple[type[nn.Module], int]] = {
    "cnn": (CNN, 4),
    "fastnet": (FastNet, 8),
    "resnet18": (ResNet18, 8),
    "wrn": (WideResNet, 4),
    "mlp": (MLP, 0),
    "transformer": (Transformer, 0),
}
# model.arch -> the kinds of input it takes (data.input_kind); the image nets take images only.
INPUT_KINDS = {"mlp": ("table", "images"), "transformer": ("tokens",)}
FOR_KIND = {"images": "cnn", "table": "mlp", "tokens": "transformer"}  # named in the error for another kind


def fit_to_data(config: ModelConfig, kind: str, inputs: np.ndarray) -> ModelConfig:
    """`config` with what the data decides filled in: a transformer's vocab_size (0: the largest token id
    + 1), after checking that the arch takes inputs of this `kind` ("images", "table", "tokens") and, for a
    vocab_size that is set, that every token id lies below it. inputs: the data set's inputs [N, ...]."""
    if kind not in INPUT_KINDS.get(config.arch, ("images",)):
        shape = {"images": "[N, H, W, C]", "table": "[N, D]", "tokens": "[N, T]"}[kind]
        raise UserError(
            f"model.arch = {config.arch!r} does not take {kind} ({inputs.dtype}{shape}):"
            f" use model.arch = {FOR_KIND[kind]!r} for {kind}"
        )
    if kind != "tokens":
        return config
    largest = int(inputs.max())
    if config.vocab_size and largest >= config.vocab_size:
        first = int(np.flatnonzero((inputs >= config.vocab_size).any(axis=1))[0])
        raise UserError(
            f"token id {largest} is not below model.vocab_size = {config.vocab_size} (first in example {first}):"
            " raise model.vocab_size or leave it 0 to take the largest id + 1"
        )
    return dataclasses.replace(config, vocab_size=config.vocab_size or largest + 1)


def build_model(
    config: ModelConfig, num_classes: int, image_shape: tuple[int, ...], dtype: Dtype, conv: str
) -> nn.Module:
    """The model named by `config.arch`, after checking that it can take images of `image_shape` (H, W, C),
    or for the nets of other data one example's shape (D,) or (T,); a transformer's config must come
    through fit_to_data (its vocab_size set).

    `conv` ("native" or "matmul") is how its convolutions are computed: batching.default_choice resolves
    `model.conv = "auto"` for the platform and model batching.
    """
    module, smallest = ARCHITECTURES[config.arch]
    if module is MLP:
        return MLP(num_classes, config.hidden, config.activation, config.dropout, dtype)
    if module is Transformer:
        assert config.vocab_size > 0, "the vocabulary comes from fit_to_data"
        return Transformer(
            num_classes,
            config.vocab_size,
            image_shape[0],
            config.embed_dim,
            config.layers,
            config.heads,
            config.pooling,
            config.dropout,
            dtype,
        )
    height, width, _ = image_shape
    if min(height, width) < smallest:
        raise UserError(
            f"model.arch = {config.arch!r} needs images of at least {smallest}x{smallest}, got {height}x{width}"
        )
    matmul = conv == "matmul"
    if module is WideResNet:
        return WideResNet(num_classes, config.depth, config.widen, config.dropout, dtype, matmul, config.norm)
    return module(num_classes, config.width, config.dropout, dtype, matmul, config.norm)
