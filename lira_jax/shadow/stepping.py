"""train.model_batching = "host": an epoch as a host loop over one jitted step of every model.

Why: XLA's CPU backend runs a native convolution at full speed only outside loop bodies; inside the
epoch's lax.scan (or batched by vmap into a grouped one) it was 7 to 54 times slower, which is why the
scanned engine computes convolutions as im2col matmuls there. Dispatching each step from the host costs
microseconds against the milliseconds a 28x28 step takes, and lets each device run its models' native
convolutions one after another (engine.over_models, unrolled). Measured on the project's 2-core CPU,
CNN width 8 on 28x28 images, batch 64: 27 ms per model-step against 42 ms for the im2col form.

Nothing syncs with the host inside an epoch: the steps are queued asynchronously, and the epoch's metrics
are left on the device like the scanned epoch's. Numerically the same training as the scanned epoch
(engine.epoch_step), up to float rounding.
"""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.sharding import Mesh

from lira_jax.shadow import engine
from lira_jax.shadow.engine import EpochMetrics, EpochPlan, TrainState


class CompiledHostEpoch:
    """A compiled host-stepped epoch: call it as the compiled scanned epoch, (states, keys, hyperparameters,
    epoch, keep, images, labels) -> (states, EpochMetrics). memory_analysis and cost_analysis are those of
    one step, as the scanned epoch's are of its body (XLA counts a loop's body once)."""

    def __init__(self, plan: EpochPlan, orders: Callable, step: Any):
        self.plan, self.orders, self.step = plan, orders, step

    def __call__(self, states: TrainState, keys, hyperparameters, epoch, keep, images, labels):
        orders, counts, step_keys = self.orders(keys, epoch, keep)
        losses, accuracies, overflows = [], [], []
        for step_index in range(self.plan.steps):
            states, (loss, accuracy, overflow) = self.step(
                states, orders, counts, step_keys, hyperparameters, epoch, jnp.int32(step_index), keep, images, labels
            )
            losses.append(loss)
            accuracies.append(accuracy)
            overflows.append(overflow)
        mean_loss, mean_accuracy = (jnp.mean(jnp.stack(values), axis=0) for values in (losses, accuracies))
        return states, EpochMetrics(mean_loss, mean_accuracy, jnp.sum(jnp.stack(overflows), axis=0))

    def memory_analysis(self) -> Any:
        return self.step.memory_analysis()

    def cost_analysis(self) -> Any:
        return self.step.cost_analysis()


class HostSteppedEpoch:
    """The jitted epoch's interface (`.lower(*arguments).compile()`) for a host loop of jitted steps."""

    def __init__(self, plan: EpochPlan):
        self.plan = plan
        self.orders = jax.jit(engine.epoch_orders)
        # Donated: the stacked state is not held twice (input and output) on the device.
        self.step = jax.jit(lambda *arguments: engine.epoch_step(plan, *arguments), donate_argnums=0)

    def lower(self, states, keys, hyperparameters, epoch, keep, images, labels) -> "LoweredHostEpoch":
        orders = jax.eval_shape(engine.epoch_orders, keys, epoch, keep)
        step_index = jax.ShapeDtypeStruct((), jnp.int32)
        lowered = self.step.lower(states, *orders, hyperparameters, epoch, step_index, keep, images, labels)
        return LoweredHostEpoch(self, lowered)


class LoweredHostEpoch:
    def __init__(self, epoch: HostSteppedEpoch, lowered: Any):
        self.epoch, self.lowered = epoch, lowered

    def compile(self) -> CompiledHostEpoch:
        return CompiledHostEpoch(self.epoch.plan, self.epoch.orders, self.lowered.compile())


def make_host_epoch(model: Any, optimizer: engine.Optimizer, *, mesh: Mesh, **plan_fields: Any) -> HostSteppedEpoch:
    """engine.make_train_epoch's counterpart for train.model_batching = "host": the same keyword arguments
    (EpochPlan's fields, without loop_groups), the models of each device of `mesh` unrolled."""
    return HostSteppedEpoch(EpochPlan(model, optimizer, unroll_mesh=mesh, **plan_fields))
