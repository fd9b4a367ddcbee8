"""The hot loop: many models trained in one jitted function over stacked state with a leading model axis.

Data flow of one epoch, all on device, with no host sync inside:
  keep: bool[M, N] -> each model's members in its own random order (int32[M, N], members first)
  -> per step, indices int32[M, B] -> images[indices] float[M, B, H, W, C] (each model its own batch)
  -> per-model augmentation (own key) -> per-model loss, gradient (or DP-SGD's clipped, noised one),
  BatchNorm statistics, optimizer update with the model's own learning rate, schedule and weight decay
  (optimizers.py).

Randomness is keyed by the model's global index, never by its place in a chunk: model m gets the same
initialisation, batches and augmentations whatever the chunk size, device count or resume point.

An epoch is ceil(max_m |members of m| / B) steps for every model of the run; a model with fewer members
than the largest wraps around its own shuffled order, so it sees every member once and a few (at most the
difference in member counts, about sqrt(N) for a balanced keep matrix) twice. That keeps all models in
lock-step without masking, which would bias BatchNorm statistics. DP-SGD with train.dp_sampling =
"poisson" (no BatchNorm there) samples each step's batch instead, masked in a fixed buffer (poisson.py).

Sharding is stated once: the model axis is split over a 1-D device mesh named "models"; the dataset is
replicated. Chunks are padded to a multiple of the device count.
"""

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from lira_jax.shadow.augment import augment_batch
from lira_jax.shadow.gradients import masked_mean, model_gradient
from lira_jax.shadow.hyperparameters import Hyperparameters
from lira_jax.shadow.objectives import predicts
from lira_jax.shadow.optimizers import Optimizer
from lira_jax.shadow.poisson import poisson_batch
from lira_jax.shadow.privacy import Privacy
from lira_jax.shadow.sorting import stable_argsort

MODEL_AXIS = "models"
# A flax.linen.Module, or one of recipe_models' adapters of a user's model: anything with linen's
# init(key, images, train=...) and apply(variables, images, train=..., mutable=..., rngs=...).
Model = Any
# Models per iteration of the loop over a device's models (train.model_batching = "loop"), by platform:
# more than one puts independent models' kernels side by side in one loop body. Measured on one H200
# (ResNet-18, 32 models, batch 256, bf16; benchmarks/RESULTS.md): 52.1k model-examples/s at 1, 55.7k at
# 2, 56.6k at 4, for 34% more memory. Elsewhere 1 (on the 2-core CPU no unroll was faster).
LOOP_UNROLL = {"gpu": 4}


def loop_unroll() -> int:
    """Models per loop iteration on the default backend (LOOP_UNROLL)."""
    return LOOP_UNROLL.get(jax.default_backend(), 1)


class TrainState(NamedTuple):
    """One or many models' training state; with many, every leaf has a leading model axis."""

    params: Any
    batch_stats: Any
    opt_state: Any


class EpochMetrics(NamedTuple):
    loss: jax.Array  # float32[M]: mean training loss over the epoch's steps
    accuracy: jax.Array  # float32[M]: mean training-batch accuracy (on augmented inputs)
    overflow: jax.Array  # int32[M]: Poisson-sampled examples dropped for want of a buffer slot (poisson.py); else 0


def model_keys(seed: int, model_indices: np.ndarray) -> jax.Array:
    """One independent key per model, from its global index: key[M]."""
    root = jax.random.key(seed)
    return jax.vmap(lambda index: jax.random.fold_in(root, index))(jnp.asarray(model_indices, jnp.uint32))


def steps_per_epoch(keep: np.ndarray, batch_size: int) -> int:
    """Steps of one epoch for every model of the run: enough for the model with the most members."""
    return max(1, math.ceil(int(keep.sum(axis=1).max()) / batch_size))


def _init_key(key: jax.Array) -> jax.Array:
    """An rbg key for a model's initialisation, derived from its threefry key.

    Why: Flax draws each parameter with its own threefry call, and XLA's CPU backend took 14-30 s to
    compile those for one small CNN; rbg (XLA's RngBitGenerator) compiles in about 2 s. rbg bits are not
    the same under vmap as alone, so init_states loops over models with lax.map instead of vmapping:
    each model's initialisation then depends on its own key only, whatever the chunk.
    """
    data = jax.random.key_data(jax.random.fold_in(key, 0))
    return jax.random.wrap_key_data(jnp.concatenate([data, data ^ jnp.uint32(0x9E3779B9)]), impl="rbg")


def init_states(
    model: Model,
    optimizer: Optimizer,
    keys: jax.Array,
    image_shape: tuple[int, ...],
    input_dtype: Any = jnp.float32,
) -> TrainState:
    """Fresh state for each key: every leaf float32[M, ...], each model its own initialisation, for inputs of
    one example's `image_shape` and `input_dtype` (int32 for token ids)."""

    def init_one(key: jax.Array) -> TrainState:
        variables = model.init(_init_key(key), jnp.zeros((1, *image_shape), input_dtype), train=False)
        params = variables["params"]
        return TrainState(params, variables.get("batch_stats", {}), optimizer.init(params))

    return jax.lax.map(init_one, keys)


def _members_in_random_order(key: jax.Array, keep_row: jax.Array) -> jax.Array:
    """int32[N]: the indices of `keep_row`'s members in random order, followed by the non-members (never read).

    The members' order is the stable argsort of their draws jax.random.uniform(key, [N]). A float32
    uniform is m * 2**-23 for 23 random bits m, so the integers m sort the same way; with bit 23 set for
    non-members they come after, and sorting.stable_argsort (3x faster than jnp.argsort on CPU) sorts them.
    """
    draws = (jax.random.uniform(key, keep_row.shape) * 2**23).astype(jnp.uint32)  # exact: 23 random bits
    return stable_argsort(jnp.where(keep_row, draws, draws | jnp.uint32(2**23)))


def batch_indices(orders: jax.Array, counts: jax.Array, step_index: jax.Array, batch_size: int) -> jax.Array:
    """int32[M, B]: each model's examples for step `step_index` of the epoch, wrapping around its members.

    orders: int32[M, N] (members first, from _members_in_random_order); counts: int32[M] members per model.
    """
    positions = step_index * batch_size + jnp.arange(batch_size)
    return jnp.take_along_axis(orders, positions[None, :] % counts[:, None], axis=1)


def _augment_some(
    key: jax.Array, images: jax.Array, targets: jax.Array, augmentations: tuple, strength: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """augment_batch on a random `strength` fraction of the batch (each image with that probability)."""
    if not augmentations:
        return images, targets
    augmented, mixed = augment_batch(key, images, targets, augmentations)
    chosen = jax.random.bernoulli(jax.random.fold_in(key, 1), strength, images.shape[:1])
    return (
        jnp.where(chosen[:, None, None, None], augmented, images),
        jnp.where(chosen[:, None], mixed, targets),
    )


def over_models(function: Callable, loop_groups: int, unroll_mesh: Mesh | None = None, shared: tuple = ()) -> Callable:
    """`function` of one model's arrays, applied over the leading model axis of every argument (pytrees);
    `shared`: arrays every model takes as they are, after its own (images, labels).

    loop_groups = 0: one vmap. Otherwise the model axis is split into that many groups, [M, ...] ->
    [groups, M / groups, ...]: the vmap over the groups follows the device sharding of the model axis
    (one group per device, no communication) and each group's models run one after another (a scan,
    loop_unroll() models per iteration).
    unroll_mesh (train.model_batching = "host"): each device of the mesh runs its own models one after
    another as straight-line code, unrolled when traced (shard_map), so no convolution is batched or
    inside a loop body; the program grows with the models per device.
    """
    if unroll_mesh is not None:

        def unrolled(shared, *arguments):
            count = jax.tree.leaves(arguments)[0].shape[0]
            results = [function(*jax.tree.map(lambda leaf, m=m: leaf[m], arguments), *shared) for m in range(count)]
            return jax.tree.map(lambda *leaves: jnp.stack(leaves), *results)

        def over_devices(*arguments):
            specs = (PartitionSpec(), *[PartitionSpec(MODEL_AXIS)] * len(arguments))
            mapped = jax.shard_map(unrolled, mesh=unroll_mesh, in_specs=specs, out_specs=PartitionSpec(MODEL_AXIS))
            return mapped(shared, *arguments)

        return over_devices

    def one_model(*arguments):
        return function(*arguments, *shared)

    if not loop_groups:
        return jax.vmap(one_model)

    def in_turn(*group):
        return jax.lax.scan(lambda _, one: (None, one_model(*one)), None, group, unroll=loop_unroll())[1]

    def looped(*arguments):
        grouped = jax.tree.map(lambda leaf: leaf.reshape(loop_groups, -1, *leaf.shape[1:]), arguments)
        results = jax.vmap(in_turn)(*grouped)
        return jax.tree.map(lambda leaf: leaf.reshape(-1, *leaf.shape[2:]), results)

    return looped


class EpochPlan(NamedTuple):
    """What one jitted epoch is built from (static: closed over, never traced).

    privacy: switches to DP-SGD, per-example clipped gradients plus Gaussian noise (privacy.py).
    epochs_vary: models may stop at different epochs, so finished ones are held still (a select over the
    whole state each step, about 20% of a digits CNN's step time on CPU: skipped when all train alike).
    loop_groups > 0 (train.model_batching = "loop"): instead of one vmapped computation over the models,
    each device's models take their steps one after another inside the step (over_models), so that each
    runs plain convolutions where vmap would make grouped ones.
    unroll_mesh (train.model_batching = "host"): each device's models unrolled (over_models), the steps
    dispatched one by one from the host (stepping.py) rather than scanned.
    soft_targets = False (no label smoothing and no augmentation in the run): the loss takes the labels as class
    ids, not as one-hot distributions (the same loss; a one-hot [B, K] and its product cost 25% of an
    epoch of 8 small MLPs on the 2-core CPU, benchmarks/tabular_throughput.py).
    """

    model: Model
    optimizer: Optimizer
    num_classes: int
    batch_size: int
    steps: int
    warmup_steps: int
    augmentations: tuple
    privacy: Privacy | None = None
    epochs_vary: bool = False
    loop_groups: int = 0
    unroll_mesh: Mesh | None = None
    soft_targets: bool = True
    poisson_slots: int = 0  # train.dp_sampling = "poisson": each step's sample buffer (poisson.buffer_size); 0: shuffle


def model_step(
    plan: EpochPlan,
    state: TrainState,
    key: jax.Array,
    hyperparameters: Hyperparameters,
    global_step: jax.Array,
    indices: jax.Array,
    images: jax.Array,
    labels: jax.Array,
    mask: jax.Array | None = None,
) -> tuple[TrainState, tuple[jax.Array, jax.Array]]:
    """One optimizer step of one model on its batch `indices` int32[B] of images float32[N, H, W, C]:
    (new state, (loss, batch accuracy)). The model's own learning rate, schedule and weight decay come from
    `hyperparameters` (scalars, optimizers.Optimizer.update); with plan.epochs_vary a model past its epochs
    is left unchanged. mask bool[B] (Poisson sampling): only these slots of `indices` are the batch."""
    augment_key, dropout_key = jax.random.split(key)
    batch_labels = labels[indices]
    targets = batch_labels
    if plan.soft_targets:
        targets = optax.smooth_labels(jax.nn.one_hot(batch_labels, plan.num_classes), hyperparameters.label_smoothing)
    batch_images, targets = _augment_some(
        augment_key, images[indices], targets, plan.augmentations, hyperparameters.augment_strength
    )
    sample = None if mask is None else (mask, plan.batch_size)
    gradient = model_gradient(plan.model, plan.privacy, state, batch_images, targets, dropout_key, sample)
    grads, batch_stats, loss, logits = gradient
    total_steps = hyperparameters.epochs * plan.steps
    params, opt_state = plan.optimizer.update(
        grads, state.opt_state, state.params, hyperparameters, global_step, total_steps, plan.warmup_steps
    )
    trained = TrainState(params, batch_stats, opt_state)
    if plan.epochs_vary:
        still_training = global_step < total_steps
        trained = jax.tree.map(lambda new, old: jnp.where(still_training, new, old), trained, state)
    correct = predicts(logits, batch_labels)
    return trained, (loss, jnp.mean(correct) if mask is None else masked_mean(correct.astype(jnp.float32), mask))


def models_step(
    plan: EpochPlan, states: TrainState, keys, hyperparameters, global_step, indices, images, labels, masks=None
) -> tuple[TrainState, tuple[jax.Array, jax.Array]]:
    """model_step for every model of the chunk (leading axis M; indices int32[M, B], masks bool[M, B] or
    None), vmapped or looped."""

    def one_model(state, key, model_hyperparameters, model_indices, *rest):
        mask = rest[0] if masks is not None else None
        global_step, images, labels = rest[-3:]
        return model_step(plan, state, key, model_hyperparameters, global_step, model_indices, images, labels, mask)

    shared = (global_step, images, labels)
    per_model = (states, keys, hyperparameters, indices) + (() if masks is None else (masks,))
    return over_models(one_model, plan.loop_groups, plan.unroll_mesh, shared)(*per_model)


def epoch_orders(keys: jax.Array, epoch: jax.Array, keep: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Each model's members in this epoch's random order: (orders int32[M, N], counts int32[M], step keys
    key[M]), all from the models' own keys key[M] and keep bool[M, N]."""
    epoch_keys = jax.vmap(lambda key: jax.random.fold_in(jax.random.fold_in(key, 1), epoch))(keys)
    order_keys, step_keys = jnp.moveaxis(jax.vmap(jax.random.split)(epoch_keys), 1, 0)
    orders = jax.vmap(_members_in_random_order)(order_keys, keep)
    return orders, keep.sum(axis=1, dtype=jnp.int32), step_keys


def epoch_step(
    plan: EpochPlan,
    states: TrainState,
    orders,
    counts,
    step_keys,
    hyperparameters,
    epoch,
    step_index,
    keep,
    images,
    labels,
) -> tuple[TrainState, tuple[jax.Array, jax.Array, jax.Array]]:
    """Step `step_index` of the epoch for every model, from epoch_orders' (orders, counts, step keys), or with
    plan.poisson_slots from a Poisson sample of keep bool[M, N]: (new states, (loss float32[M], batch
    accuracy float32[M], overflow int32[M]))."""
    keys_now = jax.vmap(jax.random.fold_in, in_axes=(0, None))(step_keys, step_index)
    global_step = epoch * plan.steps + step_index
    if not plan.poisson_slots:
        indices = batch_indices(orders, counts, step_index, plan.batch_size)
        states, (loss, accuracy) = models_step(
            plan, states, keys_now, hyperparameters, global_step, indices, images, labels
        )
        return states, (loss, accuracy, jnp.zeros_like(counts))
    sample_keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(keys_now, 2)  # model_step splits keys_now in two
    sample = jax.vmap(poisson_batch, in_axes=(0, 0, 0, None, None))
    indices, masks, overflow = sample(sample_keys, keep, counts, plan.batch_size, plan.poisson_slots)
    states, (loss, accuracy) = models_step(
        plan, states, keys_now, hyperparameters, global_step, indices, images, labels, masks
    )
    return states, (loss, accuracy, overflow)


def train_epoch(
    plan: EpochPlan, states: TrainState, keys, hyperparameters: Hyperparameters, epoch, keep, images, labels
) -> tuple[TrainState, EpochMetrics]:
    """plan.steps steps of every model (lax.scan); the arguments are those of make_train_epoch's function."""
    orders, counts, step_keys = epoch_orders(keys, epoch, keep)

    def step(states, step_index):
        arguments = (orders, counts, step_keys, hyperparameters, epoch, step_index, keep, images, labels)
        return epoch_step(plan, states, *arguments)

    states, (losses, accuracies, overflows) = jax.lax.scan(step, states, jnp.arange(plan.steps))
    return states, EpochMetrics(losses.mean(axis=0), accuracies.mean(axis=0), overflows.sum(axis=0))


def make_train_epoch(
    model: Model,
    optimizer: Optimizer,
    *,
    num_classes: int,
    batch_size: int,
    steps: int,
    warmup_steps: int,
    augmentations: tuple,
    privacy: Privacy | None = None,
    epochs_vary: bool = False,
    loop_groups: int = 0,
    soft_targets: bool = True,
    poisson_slots: int = 0,
) -> Callable[..., tuple[TrainState, EpochMetrics]]:
    """Builds the jitted `train_epoch(states, keys, hyperparameters, epoch, keep, images, labels)`.

    states: TrainState with leading axis M; keys: key[M] (model_keys); hyperparameters: Hyperparameters
    of float32[M] / int32[M] arrays; epoch: int32 scalar; keep: bool[M, N]; images: float32[N, H, W, C];
    labels: int32[N]. Returns (states, EpochMetrics). Model m takes SGD steps while epoch * steps + step <
    its epochs * steps, on its own warm-up + cosine schedule, and is left unchanged after that.
    The keyword arguments are EpochPlan's fields.
    """
    plan = EpochPlan(
        model, optimizer, num_classes, batch_size, steps, warmup_steps, augmentations, privacy, epochs_vary,
        loop_groups, soft_targets=soft_targets, poisson_slots=poisson_slots,
    )  # fmt: skip
    # Donated: the stacked state is not held twice (input and output) on the device.
    return jax.jit(functools.partial(train_epoch, plan), donate_argnums=0)


def model_mesh(num_models: int | None = None, device_count: int | None = None) -> Mesh:
    """A 1-D mesh whose one axis is the model axis, over the first local devices: all of them, or at most
    `device_count`, and never more than `num_models` (a device without a model of its own would only
    train padding copies)."""
    count = min(device_count or jax.local_device_count(), num_models or jax.local_device_count())
    return Mesh(np.asarray(jax.local_devices()[:count]), (MODEL_AXIS,))


def loop_groups(model_batching: str, mesh: Mesh) -> int:
    """The `loop_groups` of make_train_epoch and inference.make_infer for train.model_batching: one per device for
    "loop", none (one vmap) for "vmap"."""
    return mesh.size if model_batching == "loop" else 0


def model_sharding(mesh: Mesh) -> NamedSharding:
    """The one sharding of stacked model state: the leading (model) axis split across the mesh."""
    return NamedSharding(mesh, PartitionSpec(MODEL_AXIS))


def shard_models(tree: Any, mesh: Mesh) -> Any:
    """Places every leaf's leading (model) axis across the mesh."""
    return jax.device_put(tree, model_sharding(mesh))


def replicate(tree: Any, mesh: Mesh) -> Any:
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))


def padded_chunk(model_indices: np.ndarray, size: int) -> np.ndarray:
    """Pads a chunk of model indices to `size` by repeating its last index (the copies are discarded)."""
    return np.concatenate([model_indices, np.full(size - len(model_indices), model_indices[-1])])
