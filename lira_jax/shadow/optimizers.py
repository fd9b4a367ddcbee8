"""Optimizers and learning-rate schedules from optax, applied per model with its own rate and weight decay.

Each named optimizer is optax's own chain without its last link, `scale_by_learning_rate`: a unit step
(the direction), which the engine scales by the model's rate at that step, params - lr_m(t) * direction.
Why: under [vary] the peak rate, the weight decay and the number of steps are per-model values, traced
inside one vmapped step, so no transformation built once could hold them. The weight decay is coupled
(added to the gradient, L2, as torch's SGD and Adam) for sgd, adam, rmsprop and adagrad, and decoupled
(optax's add_decayed_weights inside the chain, as optax.adamw, lamb and lion) for the others.
`sgd` is today's step exactly: a (Nesterov) momentum trace of grad + weight_decay * params.

An optax.GradientTransformation given from Python (train.optimizer = "custom") is the whole optimizer:
its updates are applied as they are (optax.apply_updates), so the [train] rate, schedule and weight decay
do not apply; train.grad_clip_norm still does. Its `fingerprint` stands in for a config on resume.
"""

import hashlib
import inspect
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from lira_jax.config import TrainConfig
from lira_jax.errors import UserError
from lira_jax.shadow.hyperparameters import Hyperparameters

COUPLED_DECAY = ("sgd", "adam", "rmsprop", "adagrad")
OPTAX_PARAMETER = {("rmsprop", "b2"): "decay"}  # config name -> optax's, where they differ


def parameter(train: TrainConfig, name: str) -> float:
    """train.b1, b2 or eps as a number: "auto" is optax's default for train.optimizer (its signature's)."""
    value = getattr(train, name)
    if value != "auto":
        return value
    optax_name = OPTAX_PARAMETER.get((train.optimizer, name), name)
    return inspect.signature(getattr(optax, train.optimizer)).parameters[optax_name].default


def unit_step(train: TrainConfig, weight_decay: Any = 0.0) -> optax.GradientTransformation:
    """optax's chain for train.optimizer without its learning-rate scaling; `weight_decay` (a scalar,
    traced or not) is used by the decoupled ones. The state's structure does not depend on its value."""
    name = train.optimizer
    if name == "sgd":
        return optax.trace(decay=train.momentum, nesterov=train.nesterov and train.momentum > 0)
    if name == "rmsprop":
        return optax.scale_by_rms(decay=parameter(train, "b2"), eps=parameter(train, "eps"), initial_scale=0.0)
    if name == "adagrad":
        initial = inspect.signature(optax.adagrad).parameters["initial_accumulator_value"].default
        return optax.scale_by_rss(initial_accumulator_value=initial, eps=parameter(train, "eps"))
    if name == "lion":
        return optax.chain(
            optax.scale_by_lion(b1=parameter(train, "b1"), b2=parameter(train, "b2")),
            optax.add_decayed_weights(weight_decay),
        )
    adam = optax.scale_by_adam(b1=parameter(train, "b1"), b2=parameter(train, "b2"), eps=parameter(train, "eps"))
    if name == "adam":
        return adam
    if name == "adamw":
        return optax.chain(adam, optax.add_decayed_weights(weight_decay))
    if name == "lamb":
        return optax.chain(adam, optax.add_decayed_weights(weight_decay), optax.scale_by_trust_ratio())
    raise ValueError(f"no unit step for train.optimizer = {name!r}")


def learning_rate_at(
    train: TrainConfig, step: jax.Array, peak: jax.Array, total_steps: jax.Array, warmup_steps: int
) -> jax.Array:
    """The rate of train.schedule at `step`, written in jnp so that `peak` and `total_steps` may differ per
    model (traced under vmap). Each equals optax's schedule (tested):
    cosine: optax.warmup_cosine_decay_schedule(0, peak, warmup, max(total, warmup + 1), 0);
    constant, linear, step: a linear warm-up from 0 over `warmup_steps`, then peak, a linear decay to 0 at
    total_steps, or optax.piecewise_constant_schedule(peak, {int(b * total): factor per boundary b});
    onecycle: optax.cosine_onecycle_schedule(total, peak, pct_start = warmup / total), whose rise from
    peak / 25 is the warm-up."""
    schedule = train.schedule
    decay_steps = jnp.maximum(total_steps - warmup_steps, 1)
    decayed = jnp.clip(step - warmup_steps, 0, decay_steps) / decay_steps
    if schedule == "onecycle":
        return _onecycle(step, peak, total_steps, warmup_steps)
    if schedule == "cosine":
        after = peak * 0.5 * (1 + jnp.cos(jnp.pi * decayed))
    elif schedule == "constant":
        after = peak
    elif schedule == "linear":
        after = peak * (1 - decayed)
    else:  # step
        boundaries = jnp.floor(jnp.asarray(train.step_boundaries, jnp.float32) * total_steps)
        after = peak * jnp.float32(train.step_factor) ** jnp.sum(step >= boundaries)
    warming = peak * step / max(warmup_steps, 1)
    return jnp.where(step < warmup_steps, warming, after)


def _onecycle(step: jax.Array, peak: jax.Array, total_steps: jax.Array, rise_steps: int) -> jax.Array:
    """optax.cosine_onecycle_schedule(total_steps, peak, rise_steps / total_steps) (div 25, final 1e4) in jnp."""
    start, end = peak / 25.0, peak / (25.0 * 1e4)
    rising = jnp.clip(step / max(rise_steps, 1), 0, 1)
    falling = jnp.clip((step - rise_steps) / jnp.maximum(total_steps - rise_steps, 1), 0, 1)
    up = peak + (start - peak) / 2 * (jnp.cos(jnp.pi * rising) + 1)
    down = end + (peak - end) / 2 * (jnp.cos(jnp.pi * falling) + 1)
    return jnp.where(step >= total_steps, end, jnp.where(step < rise_steps, up, down))


@dataclass(frozen=True)
class Optimizer:
    """A run's optimizer for one model's step: `init(params)` and `update` (engine.model_step).

    custom: the optax.GradientTransformation given from Python for train.optimizer = "custom", else None.
    """

    train: TrainConfig
    custom: optax.GradientTransformation | None = None

    def init(self, params: Any) -> Any:
        return (self.custom or unit_step(self.train)).init(params)

    def update(
        self,
        grads: Any,
        state: Any,
        params: Any,
        hyperparameters: Hyperparameters,
        global_step: jax.Array,
        total_steps: jax.Array,
        warmup_steps: int,
    ) -> tuple[Any, Any]:
        """(new params, new state) of one model after a step with gradient `grads`; `hyperparameters`:
        that model's scalars (its peak rate and weight decay), total_steps: its epochs x steps per epoch."""
        if self.train.grad_clip_norm > 0:
            grads, _ = optax.clip_by_global_norm(self.train.grad_clip_norm).update(grads, optax.EmptyState())
        if self.custom is not None:
            updates, state = self.custom.update(grads, state, params)
            return optax.apply_updates(params, updates), state
        weight_decay = hyperparameters.weight_decay
        if self.train.optimizer in COUPLED_DECAY:
            grads = jax.tree.map(lambda grad, param: grad + weight_decay * param, grads, params)
        direction, state = unit_step(self.train, weight_decay).update(grads, state, params)
        rate = learning_rate_at(self.train, global_step, hyperparameters.learning_rate, total_steps, warmup_steps)
        return jax.tree.map(lambda param, step: param - rate * step, params, direction), state


def make_optimizer(train: TrainConfig, custom: Any = None) -> Optimizer:
    """The run's Optimizer; `custom` must be given exactly when train.optimizer is "custom"."""
    if train.optimizer == "custom" and custom is None:
        raise UserError(
            "train.optimizer = 'custom' names an optax transformation given from Python (lira_jax.train_shadows);"
            " the command line cannot rebuild it: resume from Python or name an optimizer"
        )
    if custom is not None and not isinstance(custom, optax.GradientTransformation):
        raise UserError(f"optimizer must be a name or an optax.GradientTransformation, got {type(custom).__name__}")
    return Optimizer(train, custom if train.optimizer == "custom" else None)


def fingerprint(transformation: optax.GradientTransformation) -> str:
    """sha256 of what `transformation` does to a fixed probe (3 steps from fixed params and gradients,
    rounded to 6 significant digits): two runs given different optimizers, or different hyperparameters
    for the first steps, differ; a change that shows only after step 3 does not."""
    params = {"w": jnp.linspace(-1.0, 1.0, 8, dtype=jnp.float32), "b": jnp.float32(0.5)}
    state = transformation.init(params)
    digest = hashlib.sha256()
    for step in range(3):
        grads = jax.tree.map(lambda leaf, step=step: jnp.cos(leaf * (step + 1)) - 0.3, params)
        updates, state = transformation.update(grads, state, params)
        params = optax.apply_updates(params, updates)
        for leaf in jax.tree.leaves(params):
            digest.update(b"|")
            digest.update(" ".join(f"{value:.6g}" for value in np.ravel(np.asarray(leaf, np.float64))).encode())
    return digest.hexdigest()
