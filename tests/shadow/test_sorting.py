import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lira_jax.shadow import engine
from lira_jax.shadow.sorting import stable_argsort


@pytest.mark.parametrize("high", [2**32 - 1, 7, 1])  # few ties, many, all keys equal
def test_stable_argsort_is_numpys_stable_argsort(high):
    keys = np.random.default_rng(high).integers(0, high, 300, dtype=np.uint32, endpoint=True)
    np.testing.assert_array_equal(jax.jit(stable_argsort)(jnp.asarray(keys)), np.argsort(keys, kind="stable"))


def test_members_are_ordered_as_the_stable_argsort_of_their_uniform_draws():
    """The order every run before sorting.py trained with: jnp.argsort(uniform + 2 * non-member)."""
    keep = np.random.default_rng(0).random((6, 2000)) < 0.5
    keys = engine.model_keys(3, np.arange(6))
    orders = np.asarray(jax.jit(jax.vmap(engine._members_in_random_order))(keys, jnp.asarray(keep)))
    for key, row, order in zip(keys, keep, orders, strict=True):
        priority = np.asarray(jax.random.uniform(key, row.shape)) + np.where(row, 0.0, 2.0)
        count = row.sum()
        np.testing.assert_array_equal(order[:count], np.argsort(priority, kind="stable")[:count])
        np.testing.assert_array_equal(np.sort(order), np.arange(len(row)))
