"""The training loss and the batch accuracy of one model's step, in forms XLA's CPU backend runs fast."""

import jax
import jax.numpy as jnp
import optax


def cross_entropy(logits: jax.Array, targets: jax.Array) -> jax.Array:
    """Cross-entropy of logits float32[..., K] against class ids int32[...] or distributions float32[..., K]."""
    if targets.ndim < logits.ndim:  # -log_softmax at the label: optax.softmax_cross_entropy of its one-hot, bit for bit
        return -jnp.take_along_axis(jax.nn.log_softmax(logits), targets[..., None], axis=-1)[..., 0]
    return optax.softmax_cross_entropy(logits, targets)


def predicts(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """bool[B]: argmax(logits float32[B, K]) == labels int32[B], the first of tied maxima winning as in
    jnp.argmax, computed with plain max and any reductions. Why: jnp.argmax is a variadic (value, index)
    reduction, which XLA's CPU backend runs through a slow generic comparator; once per step it cost 30%
    of an epoch of 8 small MLPs (benchmarks/tabular_throughput.py, 2026-12-07)."""
    best = logits.max(axis=-1)
    earlier = jnp.arange(logits.shape[-1]) < labels[:, None]
    best_before = jnp.any((logits == best[:, None]) & earlier, axis=-1)
    return (jnp.take_along_axis(logits, labels[:, None], axis=-1)[:, 0] == best) & ~best_before
