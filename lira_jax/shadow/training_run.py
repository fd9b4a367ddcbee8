"""A run's training: its unfinished models chunk by chunk (trainer.ChunkTrainer), each chunk's rows written and
its models marked done with their records (accuracies, timings, the batching chosen, DP-SGD's epsilon).
"""

import dataclasses
import sys
import time

import jax
import numpy as np

from lira_jax.errors import compact_ranges
from lira_jax.shadow import batching, engine, recipe_models
from lira_jax.shadow.checkpoints import ChunkCheckpoint
from lira_jax.shadow.data import Dataset
from lira_jax.shadow.privacy import privacy_records
from lira_jax.shadow.progress import TrainingProgress
from lira_jax.shadow.trainer import ChunkTrainer, Plan
from lira_jax.store import RunFolder


def set_up(
    plan: Plan, dataset: Dataset, keep: np.ndarray, mesh: jax.sharding.Mesh, num_todo: int
) -> tuple[ChunkTrainer, int, batching.Choice]:
    """The run's trainer and chunk size, with its model batching and conv chosen (batching.choose) for
    that chunk size; one line on stderr says what was chosen and why (in every mode, --quiet too)."""
    trainer = ChunkTrainer(plan, dataset, keep, mesh)
    requested = plan.config.train.models_per_step
    size = trainer.chunk_size(requested, num_todo)
    choice = batching.choose(trainer, size, num_todo)
    if (choice.model_batching, choice.conv) != (plan.model_batching, recipe_models.conv_of(plan.model)):
        model = recipe_models.with_conv(plan.model, choice.conv)
        trainer = ChunkTrainer(
            dataclasses.replace(plan, model=model, model_batching=choice.model_batching), dataset, keep, mesh
        )
        size = trainer.chunk_size(requested, size)  # from the measured size down, should the choice need more memory
    print(choice.line(), file=sys.stderr)
    return trainer, size, choice


def train_run(
    run: RunFolder,
    plan: Plan,
    dataset: Dataset,
    todo: np.ndarray,
    *,
    device_count: int | None = None,
    quiet: bool = False,
) -> None:
    """Trains the models `todo` (global indices, not yet done) and writes them into `run`, sharded over the
    first `device_count` local devices (default: all of them), and over no more devices than models."""
    keep = run.keep
    mesh = engine.model_mesh(len(todo), device_count)
    if not quiet:  # XLA compiles before the first step, for seconds to minutes: say so rather than sit at 0%
        cache = jax.config.jax_compilation_cache_dir if jax.config.jax_enable_compilation_cache else None
        kept = (
            f"; compiled programs are kept in {cache}"
            if cache
            else "; no compilation cache: off, or its folder cannot be written"
        )
        print(f"compiling the training step (the first epoch starts once it is compiled{kept}) ...", file=sys.stderr)
    trainer, size, choice = set_up(plan, dataset, keep, mesh, len(todo))
    flops_per_example = trainer.train_flops_per_example
    print(
        f"training {size} models per step on {mesh.size} {mesh.devices.flat[0].platform} device(s),"
        f" {flops_per_example / 1e6:,.1f} MFLOP per model-example (forward and backward)",
        file=sys.stderr,
    )
    progress = TrainingProgress(len(todo), trainer.epochs, flops_per_example, quiet)
    try:
        for start in range(0, len(todo), size):
            model_indices = todo[start : start + size]
            padded = engine.padded_chunk(model_indices, size)
            checkpoint = ChunkCheckpoint(run.path, padded)
            started = time.perf_counter()
            states, snapshots, rate, overflows = trainer.train_chunk(run, model_indices, padded, checkpoint, progress)
            trained = time.perf_counter() - started
            records = trainer.write_chunk(run, model_indices, states)
            seconds = time.perf_counter() - started
            privacy = privacy_records(plan.config, keep, model_indices, trainer.steps)
            for row, record in enumerate(records):
                record.update(
                    chunk_seconds=round(seconds, 3),
                    train_seconds=round(trained, 3),
                    chunk_size=len(model_indices),
                    devices=mesh.size,
                    model_batching=choice.model_batching,
                    conv=choice.conv,
                    batching_timings=choice.timings,
                    train_flops_per_example=flops_per_example,
                    model_examples_per_s=round(rate) if rate else None,
                    **privacy[row],
                )
                if trainer.poisson_slots:
                    record["dp_overflow_examples"] = None if overflows is None else overflows[row]
                if snapshots:
                    record["epochs"] = {epoch: rows[row] for epoch, rows in snapshots.items()}
            run.mark_done(model_indices, records)
            progress.chunk(compact_ranges(model_indices.tolist()), len(model_indices), seconds, trained, rate)
            checkpoint.remove()
    finally:
        progress.close()
