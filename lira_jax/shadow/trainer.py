"""Trains a chunk of a run's models and writes their rows into the run folder (training_run.py: the run's
loop over its chunks).

One chunk = `models_per_step` models trained together by the engine's jitted epoch, then queried on
every example under every view; its rows stream into the memmaps batch by batch (host memory stays at
one batch), and only after they are flushed are the models marked done. After each epoch of
query.save_epochs the chunk is also queried into RUN/epochs/E/ (early-stopping snapshots), and at most
every train.checkpoint_minutes the chunk's state is checkpointed with Orbax (checkpoints.py), so a killed
run resumes a long chunk from its last checkpoint instead of from scratch.
"""

import dataclasses
import functools
import math
import time
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from lira_jax import config as config_lib
from lira_jax.config import Config
from lira_jax.errors import UserError, compact_ranges
from lira_jax.shadow import batching, devices, engine, flops, inference, poisson, recipe_models, stepping
from lira_jax.shadow.augment import View, parse_augmentations, parse_views, refuse_image_only
from lira_jax.shadow.checkpoints import ChunkCheckpoint
from lira_jax.shadow.data import Dataset
from lira_jax.shadow.hyperparameters import draw
from lira_jax.shadow.models import fit_to_data
from lira_jax.shadow.optimizers import Optimizer, make_optimizer
from lira_jax.shadow.privacy import Privacy, accountant_module
from lira_jax.shadow.progress import TrainingProgress
from lira_jax.store import RunFolder


@dataclass(frozen=True)
class Plan:
    """What a chunk of training needs that is the same for every chunk of the run."""

    config: Config
    model: engine.Model
    augmentations: tuple
    views: tuple
    identity_view: int | None
    num_classes: int
    forward_flops: float  # of one image's inference-mode forward pass (flops.forward_flops_per_example)
    model_batching: str = "vmap"  # vmap | loop | host, as resolved (batching.choose for "auto")
    optimizer: Optimizer | None = None  # None: optimizers.make_optimizer(config.train)
    convolutions: str = "choice"  # batching.candidates': choice (a built-in conv net) | native | none


def make_plan(config: Config, dataset: Dataset, given: recipe_models.GivenRecipe = recipe_models.GIVEN_NONE) -> Plan:
    """The run's Plan: its model for the data set's input shape, kind and classes, its optimizer,
    augmentations and views (for a table or token ids: none, and the identity only)."""
    if config.train.dp_sgd:
        accountant_module()  # before any training: a missing package is one line, not an error after hours
    image_shape, kind = dataset.images.shape[1:], dataset.kind
    optimizer = make_optimizer(config.train, given.optimizer)
    built = config
    if given.model is None and not config_lib.is_import_path(config.model.arch):  # a user's model takes any data
        built = dataclasses.replace(config, model=fit_to_data(config.model, kind, dataset.images))
    model = recipe_models.build(built, dataset.num_classes, image_shape, given.model)
    input_dtype = dataset.images.dtype
    convolutions = "choice"
    if not recipe_models.has_conv_choice(model):
        jaxpr = flops.forward_jaxpr(model, image_shape, input_dtype)
        convolutions = "native" if flops.has_convolutions(jaxpr) else "none"
    forward_flops = flops.forward_flops_per_example(model, image_shape, input_dtype)
    platform = jax.default_backend()
    model_batching, conv = batching.default_choice(config, platform, image_shape, forward_flops, convolutions)
    model = recipe_models.with_conv(model, conv)
    if kind != "images":
        refuse_image_only(kind, config.train.augment, config.query.views)
        views, augmentations = tuple(View() for _ in config.query.views), ()
    else:
        views = parse_views(config.query.views, image_shape)
        augmentations = parse_augmentations(
            config.train.augment,
            image_shape,
            mean=dataset.mean,
            std=dataset.std,
            pixel_max=16 if config.data.source == "digits" else 255,
        )
    identity_view = views.index(View()) if View() in views else None
    return Plan(
        config,
        model,
        augmentations,
        views,
        identity_view,
        dataset.num_classes,
        forward_flops,
        model_batching,
        optimizer,
        convolutions,
    )


def compiled_bytes(compiled: Any) -> int:
    """Peak memory of a compiled executable by XLA's own analysis: arguments, outputs and temporaries."""
    analysis = compiled.memory_analysis()
    return int(
        analysis.argument_size_in_bytes
        + analysis.output_size_in_bytes
        + analysis.temp_size_in_bytes
        - analysis.alias_size_in_bytes
    )


CACHE_SHARE = 0.25  # of each CPU device's share of the last-level caches, for its temporaries


class ChunkTrainer:
    """Trains padded chunks of models on a device mesh; one instance per run and process."""

    def __init__(self, plan: Plan, dataset: Dataset, keep: np.ndarray, mesh: jax.sharding.Mesh):
        self.plan, self.keep, self.mesh = plan, keep, mesh
        train = plan.config.train
        self.steps = engine.steps_per_epoch(keep, train.batch_size)
        self.epochs = config_lib.longest_epochs(plan.config)
        self.optimizer = plan.optimizer or make_optimizer(train)
        self.image_shape = dataset.images.shape[1:]
        self.images = engine.replicate(jnp.asarray(dataset.images), mesh)
        self.labels = engine.replicate(jnp.asarray(dataset.labels, jnp.int32), mesh)
        self.train_epoch = self.epoch_function(plan.model, plan.model_batching, self.steps)
        self.infer = self.infer_function(plan.model, plan.model_batching)
        self.compiled_epochs: dict[int, Any] = {}  # chunk size -> executable compiled while sizing chunks
        self.compiled_infers: dict[int, Any] = {}  # chunk size -> inference executable, checked to fit
        self.model_sharding = engine.model_sharding(mesh)
        self.init = jax.jit(
            lambda keys: engine.init_states(plan.model, self.optimizer, keys, self.image_shape, dataset.images.dtype),
            out_shardings=self.model_sharding,
        )

    def epoch_fields(self, steps: int) -> dict[str, Any]:
        """The EpochPlan fields of this run's config for epochs of `steps` steps (model and batching aside)."""
        train = self.plan.config.train
        return dict(
            num_classes=self.plan.num_classes,
            batch_size=train.batch_size,
            steps=steps,
            warmup_steps=round(train.warmup_epochs * self.steps),
            augmentations=self.plan.augmentations,
            privacy=Privacy(train.dp_noise_multiplier, train.dp_clip_norm) if train.dp_sgd else None,
            epochs_vary=bool(self.plan.config.vary.epochs),
            soft_targets=bool(
                train.label_smoothing or self.plan.config.vary.label_smoothing or self.plan.augmentations
            ),
            poisson_slots=self.poisson_slots,
        )

    @property
    def poisson_slots(self) -> int:
        """The Poisson sample buffer (poisson.buffer_size) with train.dp_sampling = "poisson", else 0."""
        train = self.plan.config.train
        if not (train.dp_sgd and train.dp_sampling == "poisson"):
            return 0
        return poisson.buffer_size(train.batch_size, int(self.keep.sum(axis=1).max()))

    @functools.cached_property
    def train_flops_per_example(self) -> float:
        """FLOPs of one model's training step per example (flops.py: the same count on every backend);
        traced once (ResNet-18: seconds)."""
        plan = engine.EpochPlan(self.plan.model, self.optimizer, **self.epoch_fields(self.steps))
        states, keys, hyperparameters, *_ = self._epoch_arguments(self.mesh.size)
        return flops.train_flops_per_example(plan, states, keys, hyperparameters, self.images)

    def epoch_function(self, model: engine.Model, model_batching: str, steps: int) -> Any:
        """The jitted epoch of `steps` steps for this run's config, with this model and model batching
        (for "host", its steps dispatched from the host: stepping.py)."""
        fields = self.epoch_fields(steps)
        if model_batching == "host":
            return stepping.make_host_epoch(model, self.optimizer, mesh=self.mesh, **fields)
        return engine.make_train_epoch(
            model, self.optimizer, loop_groups=engine.loop_groups(model_batching, self.mesh), **fields
        )

    def infer_function(self, model: engine.Model, model_batching: str) -> Any:
        """The jitted query step (inference.make_infer) with this model and model batching."""
        unroll_mesh = self.mesh if model_batching == "host" else None
        loop_groups = engine.loop_groups(model_batching, self.mesh)
        return inference.make_infer(model, self.plan.views, self.plan.identity_view, loop_groups, unroll_mesh)

    def compiled_epoch(self, size: int) -> Any:
        """The epoch compiled for chunks of `size` models (once; training then uses the same executable)."""
        if size not in self.compiled_epochs:
            self.compiled_epochs[size] = self.train_epoch.lower(*self._epoch_arguments(size)).compile()
        return self.compiled_epochs[size]

    def compiled_infer(self, size: int) -> Any:
        """Inference compiled for chunks of `size` models and one query batch (once)."""
        if size not in self.compiled_infers:
            batch = batching.query_batch(self)
            states = self._epoch_arguments(size)[0]
            positions = jax.ShapeDtypeStruct((batch,), jnp.int32)
            self.compiled_infers[size] = self.infer.lower(states, self.images, self.labels, positions).compile()
        return self.compiled_infers[size]

    def _epoch_arguments(self, size: int) -> tuple:
        """Abstract arguments of train_epoch for a chunk of `size` models (nothing is allocated)."""
        keys = jax.eval_shape(lambda: engine.model_keys(0, np.arange(size)))
        states = jax.eval_shape(self.init, keys)
        hyperparameters = jax.eval_shape(lambda: draw(self.plan.config, np.arange(size)))
        keep = jax.ShapeDtypeStruct((size, self.keep.shape[1]), jnp.bool_)
        epoch = jax.ShapeDtypeStruct((), jnp.int32)
        return states, keys, hyperparameters, epoch, keep, self.images, self.labels

    def chunk_inputs(self, padded: np.ndarray) -> tuple[jax.Array, Any, jax.Array]:
        """The per-model arguments of train_epoch for the models `padded` (global indices), sharded over the
        mesh: (keys key[M], Hyperparameters of [M] arrays, keep rows bool[M, N])."""
        keys = engine.model_keys(self.plan.config.train.seed, padded)
        hyperparameters = draw(self.plan.config, padded)
        return engine.shard_models((keys, hyperparameters, jnp.asarray(self.keep[padded])), self.mesh)

    def chunk_size(self, requested: int | str, num_todo: int) -> int:
        """Models per step, a multiple of the device count. `auto`: the largest that fits, by XLA's memory
        analysis of the compiled epoch and of the compiled query step (views x query batch; one device's
        program each), starting from all models: each device's share in 80% of its free memory and, on
        CPU, the epoch's scratch memory (temporaries) in a quarter of its share of the last-level caches
        (CPU devices share the host's memory and caches: 1/count each).

        Why the cache on CPU: the digits CNN (3.75 MiB of temporaries per model; 2 cores, 16 MiB of L3
        each) trained fastest at one model per core and slower with each doubling, by 10 to 20% a step
        (benchmarks/RESULTS.md). Each try that does not fit jumps to the size its bytes scale to.
        """
        count = self.mesh.size
        if requested != "auto":
            return count * math.ceil(int(requested) / count)
        mesh_devices = list(self.mesh.devices.flat)
        if mesh_devices[0].platform == "cpu":
            memory = 0.8 * devices.free_bytes(mesh_devices[0]) / count
            cache = devices.cpu_cache_bytes()
            cache = CACHE_SHARE * cache / count if cache else None
        else:
            memory, cache = 0.8 * min(devices.free_bytes(device) for device in mesh_devices), None
        size = count * math.ceil(num_todo / count)
        while True:
            compiled = self.compiled_epoch(size)
            needed, scratch = compiled_bytes(compiled), compiled.memory_analysis().temp_size_in_bytes
            shrink = min(memory / needed, cache / scratch if cache and scratch else 1.0)
            if shrink >= 1 or size == count:  # training fits: so must querying the trained chunk
                needed = max(needed, compiled_bytes(self.compiled_infer(size)))
                if needed <= memory or size == count:
                    break
                shrink = memory / needed
            size = count * max(1, min(size // (2 * count), int(size * shrink) // count))
        self.compiled_epochs = {size: self.compiled_epochs[size]}
        if needed > memory:
            raise UserError(
                f"even {size} model(s) per step need {needed / 2**30:.1f} GiB on each of {count} device(s),"
                f" more than the {memory / 2**30:.1f} GiB free for each: use a smaller model, batch or dataset"
            )
        return size

    def train_chunk(
        self,
        run: RunFolder,
        model_indices: np.ndarray,
        padded: np.ndarray,
        checkpoint: ChunkCheckpoint,
        progress: TrainingProgress,
    ) -> tuple[Any, dict, float | None, list | None]:
        """Trains models `model_indices` (`padded` to the chunk size) for all epochs, writing the epoch
        snapshots of query.save_epochs into `run` as it goes; resumes from `checkpoint` if it holds one.

        Returns (stacked states, {"E": [per-model accuracy records]} of the snapshots, model-examples/s
        over the epochs after the first of this call, which may have compiled: None if there were none,
        each model's Poisson overflows over all its epochs: None without Poisson sampling or after a
        restore, whose earlier epochs were not counted here).
        """
        config = self.plan.config
        size = len(padded)
        keys, hyperparameters, keep_rows = self.chunk_inputs(padded)
        abstract = jax.tree.map(
            lambda leaf: jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=self.model_sharding),
            jax.eval_shape(self.init, keys),
        )
        restored = checkpoint.restore(abstract)
        first_epoch, states, snapshots = restored if restored else (0, self.init(keys), {})
        models = compact_ranges(model_indices.tolist())
        if restored:
            progress.resumed(models, first_epoch, len(model_indices))
        examples_per_epoch = len(model_indices) * self.steps * config.train.batch_size
        train_epoch = self.compiled_epoch(size)
        last_checkpoint = time.perf_counter()
        steady_seconds = 0.0
        overflows = np.zeros(len(model_indices), np.int64) if self.poisson_slots and not restored else None
        for epoch in range(first_epoch, self.epochs):
            started = time.perf_counter()
            states, metrics = train_epoch(
                states, keys, hyperparameters, jnp.int32(epoch), keep_rows, self.images, self.labels
            )
            loss = float(jnp.mean(metrics.loss[: len(model_indices)]))  # one sync per epoch, for the progress
            if not math.isfinite(loss):
                raise UserError(f"training diverged (loss {loss}) in epoch {epoch}: lower train.learning_rate")
            if overflows is not None:
                overflows += np.asarray(metrics.overflow[: len(model_indices)])
            seconds = time.perf_counter() - started
            steady = epoch > first_epoch  # the first may compile
            steady_seconds += seconds if steady else 0.0
            rate = examples_per_epoch / seconds if steady else None
            progress.epoch(models, len(model_indices), epoch + 1, loss, rate)
            done = epoch + 1
            if done in config.query.save_epochs:
                snapshots[str(done)] = self.write_chunk(run, model_indices, states, snapshot=done)
            if done < self.epochs and time.perf_counter() - last_checkpoint >= 60 * config.train.checkpoint_minutes:
                run.flush()
                checkpoint.save(done, states, snapshots)
                last_checkpoint = time.perf_counter()
        steady_epochs = self.epochs - first_epoch - 1
        rate = examples_per_epoch * steady_epochs / steady_seconds if steady_epochs > 0 else None
        return states, snapshots, rate, None if overflows is None else overflows.tolist()

    def write_chunk(
        self, run: RunFolder, model_indices: np.ndarray, states: Any, snapshot: int | None = None
    ) -> list[dict]:
        """Queries the trained chunk on every example, streams rows into the run (into its epoch-`snapshot`
        arrays if given), and returns per-model records: train and test accuracy, members."""
        num_examples = self.keep.shape[1]
        batch = batching.query_batch(self)
        keeps_logits = self.plan.config.query.logits_dtype != "none"
        count = len(model_indices)
        infer = self.compiled_infer(len(jax.tree.leaves(states.params)[0]))
        correct = np.zeros((count, num_examples), dtype=bool)
        for start in range(0, num_examples, batch):
            stop = min(start + batch, num_examples)
            # Pad the last batch to the same shape: one compiled inference for the whole run.
            positions = np.minimum(np.arange(start, start + batch), num_examples - 1).astype(np.int32)
            logits, scores, batch_correct = infer(states, self.images, self.labels, positions)
            rows = (slice(0, count), slice(0, stop - start))
            run.write_rows(
                model_indices,
                start,
                np.asarray(scores[rows]),
                np.asarray(logits[rows]) if keeps_logits else None,
                snapshot=snapshot,
            )
            correct[:, start:stop] = np.asarray(batch_correct[rows])
        members = self.keep[model_indices]
        return [
            {
                "train_accuracy": float(correct[row][members[row]].mean()),
                "test_accuracy": float(correct[row][~members[row]].mean()) if (~members[row]).any() else None,
                "members": int(members[row].sum()),
            }
            for row in range(count)
        ]
