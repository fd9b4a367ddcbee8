"""One model's gradient on its batch: plain backpropagation, or DP-SGD's clipped and noised per-example one.

The engine (engine.model_step) calls this for each model of a chunk, vmapped or looped over the model axis.
"""

import functools
from typing import Any

import jax
import jax.numpy as jnp

from lira_jax.shadow.objectives import cross_entropy
from lira_jax.shadow.privacy import Privacy, private_gradient

# A flax.linen.Module, or one of recipe_models' adapters of a user's model (engine.Model).
Model = Any


def apply_train(model: Model, params, batch_stats, images: jax.Array, dropout_key: jax.Array):
    """One model's training-mode forward pass: (logits float32[B, K], {"batch_stats": updated statistics})."""
    return model.apply(
        {"params": params, "batch_stats": batch_stats},
        images,
        train=True,
        mutable=["batch_stats"],
        rngs={"dropout": dropout_key},
    )


def batch_loss(model: Model, params, batch_stats, images: jax.Array, targets: jax.Array, dropout_key: jax.Array):
    """(mean cross-entropy of the batch against targets (cross_entropy), (new batch statistics, logits))."""
    logits, updates = apply_train(model, params, batch_stats, images, dropout_key)
    loss = cross_entropy(logits, targets).mean()
    return loss, (updates.get("batch_stats", {}), logits)


def model_gradient(
    model: Model,
    privacy: Privacy | None,
    state: Any,
    images: jax.Array,
    targets: jax.Array,
    key: jax.Array,
    sample: tuple[jax.Array, int] | None = None,
) -> tuple[Any, Any, jax.Array, jax.Array]:
    """(gradient, new batch statistics, loss, logits float32[B, K]) of one model's batch; with `privacy`,
    DP-SGD's clipped and noised gradient (BatchNorm statistics are then left as they are), over the
    examples of sample = (mask bool[B], expected batch size) only where given (Poisson sampling)."""
    if privacy is None:
        (loss, (batch_stats, logits)), grads = jax.value_and_grad(functools.partial(batch_loss, model), has_aux=True)(
            state.params, state.batch_stats, images, targets, key
        )
        return grads, batch_stats, loss, logits

    def example_loss(params, image, target, dropout_key):
        logits, _ = apply_train(model, params, state.batch_stats, image[None], dropout_key)
        return cross_entropy(logits[0], target), logits[0]

    dropout_keys = jax.random.split(key, images.shape[0])
    grads, losses, logits = private_gradient(
        example_loss, state.params, (images, targets, dropout_keys), jax.random.fold_in(key, 1), privacy, sample
    )
    if sample is None:
        return grads, state.batch_stats, losses.mean(), logits
    return grads, state.batch_stats, masked_mean(losses, sample[0]), logits


def masked_mean(values: jax.Array, mask: jax.Array) -> jax.Array:
    """The mean of values float32[B] where mask bool[B] (0 for an empty mask)."""
    return jnp.sum(jnp.where(mask, values, 0)) / jnp.maximum(mask.sum(), 1)
