"""A stable argsort of uint32 keys for XLA's CPU backend, where jnp.argsort is slow.

Why: the engine shuffles every model's members once per epoch (engine._members_in_random_order). XLA's
CPU sort is fast only for one operand of a primitive type; an argsort sorts two (the keys and their
indices) through a generic comparator. Measured on the project's 2-core CPU (jax 0.10.2, 2026-12-07,
8 rows of 20,000): jnp.argsort 52-56 ms, jnp.sort of the uint32 keys alone 11 ms; for the 8 small MLPs
of benchmarks/tabular_throughput.py the argsort was 40% of the epoch. So the keys are sorted alone, each
key's place found by binary search in the sorted keys, and equal keys (rare for random 23-bit keys)
placed in index order, one per group per round: the same permutation as a stable argsort, in 19 ms.
"""

import jax
import jax.numpy as jnp


def stable_argsort(keys: jax.Array) -> jax.Array:
    """uint32[N] -> int32[N], equal to jnp.argsort(keys, stable=True); fastest when few keys are equal
    (one round of O(N) scatters per member of the largest group of equal keys)."""
    size = keys.shape[0]
    first_slot = jnp.searchsorted(jnp.sort(keys), keys).astype(jnp.int32)  # where each key's group begins
    index = jnp.arange(size, dtype=jnp.int32)

    def place_one_per_group(state: tuple) -> tuple:
        """Each group's smallest unplaced index goes to the group's next free slot (slot `size`: dropped)."""
        order, placed, round_ = state
        slot = jnp.where(placed, size, first_slot + round_)
        smallest = jnp.full(size + 1, size, jnp.int32).at[slot].min(index)
        won = ~placed & (smallest[slot] == index)
        return order.at[jnp.where(won, slot, size)].set(index), placed | won, round_ + 1

    start = (jnp.zeros(size + 1, jnp.int32), jnp.zeros(size, jnp.bool_), jnp.int32(0))
    order, _, _ = jax.lax.while_loop(lambda state: ~state[1].all(), place_one_per_group, start)
    return order[:size]
