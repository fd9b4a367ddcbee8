"""A user's Flax model behind the calls the engine makes of a linen module: `init` and `apply`.

The engine, the query step and the FLOP count call `model.init(key, images, train=False)` and
`model.apply(variables, images, train=..., mutable=["batch_stats"], rngs={"dropout": key})` of one model,
and stack the variables {"params", "batch_stats"} along the model axis. A linen module does that itself;
these adapters add the run's compute precision to it, and give a flax.nnx module the same pure form:

- LinenModel: the user's flax.linen.Module as it is.
- NnxModel: nnx.split of the user's module into a static graph and its state; every call is a pure
  nnx.merge of that graph with the model's arrays, run in .train() or .eval() mode, and nnx.state of the
  updated BatchNorm statistics. nnx.Param leaves are the "params", nnx.BatchStat ones the
  "batch_stats" (flat dicts keyed "layer/0/kernel"); the RNG streams are not state: each call seeds
  them afresh from the call's dropout key, so that they are the same whatever the chunk or resume point.

precision bfloat16: floating params and inputs are cast to bfloat16 for the forward and backward pass
(float32 parameters, statistics and optimizer state are kept), logits are returned in float32.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import nnx


def _cast(tree: Any, dtype: Any) -> Any:
    """Floating leaves of `tree` in `dtype` (the others as they are)."""
    if dtype == jnp.float32:
        return tree
    return jax.tree.map(lambda leaf: leaf.astype(dtype) if jnp.issubdtype(leaf.dtype, jnp.floating) else leaf, tree)


def _like(tree: Any, reference: Any) -> Any:
    """`tree` with each leaf in the dtype of `reference`'s (updated statistics keep their stored dtype)."""
    return jax.tree.map(lambda leaf, old: leaf.astype(old.dtype), tree, reference)


@dataclass(frozen=True)
class LinenModel:
    """A user's flax.linen.Module (`__call__(x, train: bool)` -> logits [B, C]) at the run's precision."""

    module: nn.Module
    dtype: Any = jnp.float32

    def init(self, key: jax.Array, images: jax.Array, train: bool = False) -> dict:
        return dict(self.module.init(key, images, train=train))

    def apply(self, variables: dict, images: jax.Array, train: bool, mutable: Any = False, rngs: Any = None):
        computed = {**variables, "params": _cast(variables["params"], self.dtype)}
        out = self.module.apply(computed, _cast(images, self.dtype), train=train, mutable=mutable, rngs=rngs)
        if not mutable:
            return out.astype(jnp.float32)
        logits, updates = out
        updates = {name: _like(value, variables[name]) for name, value in dict(updates).items()}
        return logits.astype(jnp.float32), updates


def _name(path: tuple) -> str:
    return "/".join(map(str, path))


def named_arrays(state: nnx.State) -> dict[str, Any]:
    """An nnx.State as a flat {"layer/0/kernel": array} dict (what the engine stacks and Orbax saves)."""
    return {_name(path): variable.get_value() for path, variable in nnx.to_flat_state(state)}


def _state(template: list, named: dict[str, Any]) -> nnx.State:
    """The nnx.State of `template` (flat (path, Variable) pairs) holding the arrays `named` (named_arrays)."""
    return nnx.from_flat_state([(path, variable.replace(named[_name(path)])) for path, variable in template])


@dataclass(frozen=True, eq=False)
class NnxModel:
    """A user's flax.nnx.Module as pure functions of its arrays.

    build: rngs -> the user's module (NAME(num_classes=C, input_shape=S, rngs=rngs)); graphdef and the
    templates (flat (path, Variable) lists of params, batch statistics, RNG streams) come from one
    abstract build (nnx.eval_shape), made by recipe_models.
    """

    build: Callable[[nnx.Rngs], nnx.Module]
    graphdef: Any
    params: list
    batch_stats: list
    rng_streams: list
    dtype: Any = jnp.float32

    def init(self, key: jax.Array, images: jax.Array, train: bool = False) -> dict:
        del images, train  # an nnx module is initialised when it is built
        _, params, batch_stats, _ = nnx.split(self.build(nnx.Rngs(key)), nnx.Param, nnx.BatchStat, ...)
        variables = {"params": named_arrays(params)}
        if self.batch_stats:
            variables["batch_stats"] = named_arrays(batch_stats)
        return variables

    def _streams(self, key: jax.Array) -> nnx.State:
        """Fresh RNG streams: stream i's key fold_in(key, i), its count 0."""
        fresh = []
        for index, (path, variable) in enumerate(self.rng_streams):
            value = variable.get_value()
            if jnp.issubdtype(value.dtype, jax.dtypes.prng_key):
                fresh.append((path, variable.replace(jax.random.fold_in(key, index))))
            else:
                fresh.append((path, variable.replace(jnp.zeros(value.shape, value.dtype))))
        return nnx.from_flat_state(fresh)

    def apply(self, variables: dict, images: jax.Array, train: bool, mutable: Any = False, rngs: Any = None):
        key = (rngs or {}).get("dropout", jax.random.key(0))
        batch_stats = variables.get("batch_stats", {})
        model = nnx.merge(
            self.graphdef,
            _state(self.params, _cast(variables["params"], self.dtype)),
            _state(self.batch_stats, batch_stats),
            self._streams(key),
        )
        if train:
            model.train()
        else:
            model.eval()
        logits = model(_cast(images, self.dtype)).astype(jnp.float32)
        if not mutable:
            return logits
        updated = _like(named_arrays(nnx.state(model, nnx.BatchStat)), batch_stats)
        return logits, ({"batch_stats": updated} if updated else {})
