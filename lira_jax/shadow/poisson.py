"""train.dp_sampling = "poisson": each step's batch as a Poisson sample of the model's members, in a fixed-size
buffer with a mask, so that every model of a chunk keeps one compiled step.

Each member of model m joins each step's batch independently with probability q_m = B / n_m (B =
train.batch_size, n_m its members), the sampler that the PLD accountant's PoissonSampledDpEvent describes
(privacy.py). The sample's size is Binomial(n_m, q_m), mean B; it is held in a buffer of
`buffer_size` slots, B + 8 standard deviations rounded up, and the slots past the sample are masked
(they contribute nothing to the clipped-gradient sum). A sample larger than the buffer (an overflow; by
the exact binomial tail 2e-13 per step at B = 64 of 898 members, 4e-13 at B = 16 of 100, 8e-8 at B = 1)
keeps its lowest-indexed members and drops the rest: such a step is not the Poisson sampler, so the
accounting is a proof only for a model without overflow, which models.json counts (`dp_overflow_examples`).
"""

import math

import jax
import jax.numpy as jnp

OVERFLOW_DEVIATIONS = 8  # buffer slots above the expected batch size, in standard deviations of the sample size


def buffer_size(batch_size: int, largest_members: int) -> int:
    """Slots of the sample buffer: ceil(B + 8 sqrt(B (1 - q))) for the model with the most members (its
    sample size varies the most), at most its member count (q = 1 samples them all)."""
    q = min(1.0, batch_size / largest_members)
    return min(largest_members, math.ceil(batch_size + OVERFLOW_DEVIATIONS * math.sqrt(batch_size * (1 - q))))


def poisson_batch(
    key: jax.Array, keep_row: jax.Array, members: jax.Array, batch_size: int, slots: int
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """One model's Poisson sample of its members: (indices int32[slots], mask bool[slots], overflow int32).

    keep_row: bool[N], the model's members; members: int32, their count (q = batch_size / members).
    indices[mask] are the sampled examples in increasing order; the other slots hold example 0 and are
    masked; overflow: sampled members that found no slot (dropped), 0 but for a vanishingly rare step.
    """
    q = jnp.minimum(1.0, batch_size / members.astype(jnp.float32))
    sampled = keep_row & (jax.random.uniform(key, keep_row.shape) < q)
    size = sampled.sum(dtype=jnp.int32)
    indices = jnp.flatnonzero(sampled, size=slots, fill_value=0).astype(jnp.int32)
    return indices, jnp.arange(slots) < size, jnp.maximum(size - slots, 0)
