"""φ, the logit-scaled confidence (docs/run_folder.md, scores.npy), in JAX for the inference step.

The audit half has the NumPy original (`lira_jax.audit.phi.logit_scale`); tests hold the two equal.
"""

from typing import Any

import jax.numpy as jnp


def logit_scale_jax(logits: Any, labels: Any) -> Any:
    """`lira_jax.audit.phi.logit_scale` in jax.numpy, jittable: it runs where the logits are
    (inside the inference step).

    logits: float[..., C] (float16 is computed in float32); labels: int, shaped as for `logit_scale`,
    e.g. logits float32[M, B, V, C] with labels int32[B] or int32[1, B, 1] -> float32[M, B, V].
    """
    logits = jnp.asarray(logits)
    logits = logits.astype(jnp.promote_types(logits.dtype, jnp.float32))
    labels = jnp.asarray(labels)
    if labels.ndim < logits.ndim - 1:
        labels = labels[..., None]
    is_label = labels[..., None] == jnp.arange(logits.shape[-1])
    true = jnp.sum(jnp.where(is_label, logits, 0), axis=-1)
    others = jnp.where(is_label, -jnp.inf, logits)
    top = jnp.max(others, axis=-1)
    return (true - top) - jnp.log(jnp.sum(jnp.exp(others - top[..., None]), axis=-1))
