"""Several processes (hosts) training one run: `jax.distributed` set up from flags or the cluster's
environment, each process's share of the models, and barriers between the processes.

Models are independent, so processes never talk while training: each trains a disjoint share of the
unfinished models on its own local devices (its own mesh) and writes its rows into the shared run folder.
They meet only at barriers on the coordination service that `jax.distributed.initialize` starts (no device
collectives, so a barrier can wait as long as the slowest process trains).
"""

import jax
import numpy as np
from orbax.checkpoint import multihost

from lira_jax.errors import UserError

BARRIER_TIMEOUT_S = 7 * 24 * 3600  # a barrier waits for the slowest process's whole share of training


def initialize(coordinator: str | None, num_processes: int | None, process_id: int | None, detect: bool) -> None:
    """Joins the processes of a multi-host run; with no flags and `detect` False, does nothing (one process).

    Flags (`--coordinator HOST:PORT --num-processes N --process-id I`) name everything; `detect`
    (`--distributed`) lets `jax.distributed.initialize()` read the cluster's environment (SLURM, Open MPI,
    Cloud TPU). Must run before any other JAX call.
    """
    flags = (coordinator, num_processes, process_id)
    if all(flag is None for flag in flags) and not detect:
        return
    if detect and any(flag is not None for flag in flags):
        raise UserError("--distributed reads the cluster's environment: give it without --coordinator and friends")
    if not detect and any(flag is None for flag in flags):
        raise UserError("--coordinator, --num-processes and --process-id go together: give all three")
    if not detect and not 0 <= process_id < num_processes:
        raise UserError(f"--process-id must lie in [0, --num-processes = {num_processes}), got {process_id}")
    try:
        if detect:
            jax.distributed.initialize()
        else:
            jax.distributed.initialize(coordinator, num_processes, process_id)
    except (RuntimeError, ValueError) as error:
        raise UserError(f"jax.distributed.initialize failed: {error}") from None


def share(todo: np.ndarray, process_index: int, process_count: int) -> np.ndarray:
    """This process's contiguous share of the model indices `todo`; the shares are disjoint and cover it."""
    return np.array_split(todo, process_count)[process_index]


def barrier(name: str) -> None:
    """Waits until every process has reached the barrier `name` (each name used once); one process: no-op."""
    if jax.process_count() > 1:
        multihost.get_jax_distributed_client().wait_at_barrier(name, timeout_in_ms=BARRIER_TIMEOUT_S * 1000)
