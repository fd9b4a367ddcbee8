"""FLOPs of one model's training step, counted the same way on every backend.

Why not XLA's cost analysis of the compiled step: on a GPU, XLA's optimised program calls cuDNN for its
convolutions, and the analysis does not count custom calls (ResNet-18: 21.7 MFLOP per example instead of
3.33 GFLOP, measured on an H200). Its analysis of the unoptimised program counts convolutions, but only
their taps inside the image, not SAME padding's (0.87 of the usual count for ResNet-18 at 32x32).

So the count walks the traced program (the jaxpr, before any backend sees it) and adds 2 FLOPs per
multiply-add of every convolution and matrix product, the usual convention of model FLOPs: a 3x3
convolution costs out_height * out_width * 9 * in_channels * out_channels multiply-adds, padding taps
included. The elementwise work (BatchNorm, activations, the optimizer) is left out: about 1% of a CNN's.
A convolution's input gradient is a convolution over its output gradient dilated by the stride; the
dilation's zeros are not counted, so a strided layer's backward pass costs what its forward pass does.
ResNet-18 with the CIFAR stem at 32x32 counts 6 x its 0.556 G multiply-adds = 3.33 GFLOP (tested).
"""

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
from jax.extend import core

from lira_jax.shadow import engine
from lira_jax.shadow.engine import EpochPlan


def _conv_flops(equation: core.JaxprEqn) -> float:
    """2 x the multiply-adds of a conv_general_dilated: each output element takes (kernel window) x (input
    features per group) of them, less the zeros of an input dilated by lhs_dilation."""
    params = equation.params
    kernel = equation.invars[1].aval.shape
    numbers = params["dimension_numbers"]
    window = math.prod(kernel[axis] for axis in numbers.rhs_spec[2:])
    features_in = kernel[numbers.rhs_spec[1]]
    outputs = math.prod(equation.outvars[0].aval.shape)
    return 2.0 * outputs * window * features_in / math.prod(params["lhs_dilation"])


def _dot_flops(equation: core.JaxprEqn) -> float:
    """2 x the multiply-adds of a dot_general: each output element sums over the contracted axes."""
    (contracting, _), _ = equation.params["dimension_numbers"]
    lhs = equation.invars[0].aval.shape
    return 2.0 * math.prod(equation.outvars[0].aval.shape) * math.prod(lhs[axis] for axis in contracting)


def jaxpr_flops(jaxpr: core.Jaxpr) -> float:
    """FLOPs of the convolutions and matrix products of `jaxpr`, into every sub-program: a scan's body
    times its length, a cond's costliest branch, a while loop's body once (its trip count is a value)."""
    total = 0.0
    for equation in jaxpr.eqns:
        name = equation.primitive.name
        if name == "conv_general_dilated":
            total += _conv_flops(equation)
        elif name == "dot_general":
            total += _dot_flops(equation)
        elif name == "cond":
            total += max(jaxpr_flops(branch.jaxpr) for branch in equation.params["branches"])
        else:
            repeats = equation.params["length"] if name == "scan" else 1
            for sub in core.jaxprs_in_params(equation.params):
                total += repeats * jaxpr_flops(sub)
    return total


def forward_jaxpr(model: engine.Model, image_shape: tuple[int, ...], input_dtype: Any = jnp.float32) -> core.Jaxpr:
    """`model`'s inference-mode forward pass on one example of `image_shape` ((H, W, C) for an image, (D,) or
    (T,) otherwise) and `input_dtype` (int32 for token ids), traced only."""
    images = jax.ShapeDtypeStruct((1, *image_shape), input_dtype)
    variables = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(images.shape, input_dtype), train=False))
    traced = jax.make_jaxpr(lambda variables, images: model.apply(variables, images, train=False))(variables, images)
    return traced.jaxpr


def forward_flops_per_example(
    model: engine.Model, image_shape: tuple[int, ...], input_dtype: Any = jnp.float32
) -> float:
    """FLOPs of `model`'s inference-mode forward pass on one example (forward_jaxpr), traced only."""
    return jaxpr_flops(forward_jaxpr(model, image_shape, input_dtype))


def has_convolutions(jaxpr: core.Jaxpr) -> bool:
    """Whether `jaxpr` (or a sub-program of it) holds a convolution."""
    return any(
        equation.primitive.name == "conv_general_dilated"
        or any(map(has_convolutions, core.jaxprs_in_params(equation.params)))
        for equation in jaxpr.eqns
    )


def train_flops_per_example(plan: EpochPlan, states: Any, keys: Any, hyperparameters: Any, images: Any) -> float:
    """FLOPs of one model's training step (engine.model_step: forward, backward, update) on a batch of
    plan.batch_size images, divided by the batch size. states, keys, hyperparameters: a chunk's (leading
    model axis), abstract or not; images: the inputs, float32[N, H, W, C], float32[N, D] or int32[N, T]. Only
    shapes and dtypes are traced: nothing is computed
    or compiled."""

    def first_model(leaf: Any) -> jax.ShapeDtypeStruct:
        return jax.ShapeDtypeStruct(leaf.shape[1:], leaf.dtype)

    batch = plan.batch_size
    arguments = (
        *jax.tree.map(first_model, (states, keys, hyperparameters)),
        jax.ShapeDtypeStruct((), jnp.int32),
        jax.ShapeDtypeStruct((batch,), jnp.int32),
        jax.ShapeDtypeStruct(images.shape, images.dtype),
        jax.ShapeDtypeStruct(images.shape[:1], jnp.int32),
    )
    traced = jax.make_jaxpr(functools.partial(engine.model_step, plan))(*arguments)
    return jaxpr_flops(traced.jaxpr) / batch
