"""Orbax epoch checkpoints of an unfinished chunk, so a killed run loses at most one checkpoint interval.

A chunk's checkpoints live in RUN/checkpoints/chunk-<hash of its padded model indices>/<epoch>/ and hold
the stacked TrainState plus a JSON item (the chunk's model indices and the accuracy records of the epoch
snapshots written so far). A rerun that forms the same chunk (same unfinished models, same chunk size)
restores the latest one and trains on from there; any other chunk starts fresh. The folder is removed
once the chunk's models are marked done. Each process checkpoints its own chunks alone (its models are
independent of every other process's), so Orbax runs single-process even under jax.distributed.

An interrupt (Ctrl-C, SIGINT) while Orbax writes or reads is held until it is done (`interrupts_held`):
Orbax works in threads, and an interrupt landing in the middle left their tracebacks on the screen and was
once swallowed, the run going on to the end; held, it stops the run right after, with one line, and the
checkpoint is whole.
"""

import hashlib
import logging
import shutil
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from lira_jax.errors import UserError
from lira_jax.writing import free_bytes, size_text


class ChunkCheckpoint:
    """The checkpoints of one chunk: `padded` are its global model indices, int[K] (padding included)."""

    def __init__(self, run_path: Path, padded: np.ndarray):
        digest = hashlib.sha1(np.asarray(padded, np.int64).tobytes()).hexdigest()[:16]
        self.path = (run_path / "checkpoints" / f"chunk-{digest}").absolute()
        self.padded = [int(index) for index in padded]
        self._manager: ocp.CheckpointManager | None = None

    def manager(self) -> ocp.CheckpointManager:
        if self._manager is None:
            process = jax.process_index()
            self.path.mkdir(parents=True, exist_ok=True)  # Orbax leaves it to us with active_processes set
            self._manager = ocp.CheckpointManager(
                self.path,
                options=ocp.CheckpointManagerOptions(
                    max_to_keep=1,
                    enable_async_checkpointing=False,
                    create=False,
                    multiprocessing_options=ocp.options.MultiprocessingOptions(
                        primary_host=process, active_processes={process}
                    ),
                ),
            )
        return self._manager

    def restore(self, abstract_states: Any) -> tuple[int, Any, dict] | None:
        """(epochs done, states, snapshot records) of the latest checkpoint, or None if there is none.

        abstract_states: jax.ShapeDtypeStruct leaves with their shardings, as the restored arrays should be.
        """
        if not self.path.is_dir():
            return None
        epoch = self.manager().latest_step()
        if epoch is None:
            return None
        try:
            with interrupts_held():
                restored = self.manager().restore(
                    epoch,
                    args=ocp.args.Composite(
                        states=ocp.args.StandardRestore(abstract_states), records=ocp.args.JsonRestore()
                    ),
                )
            models, snapshots = restored.records["models"], restored.records["snapshots"]
            if not isinstance(snapshots, dict):
                raise TypeError(f"its snapshot records are {type(snapshots).__name__}, not an object")
        except Exception as error:  # damaged (a full disk, a kill, an edit): dropped, never read again
            reason = " ".join(f"{type(error).__name__}: {error}".split())[:200]
            print(f"note: the checkpoint {self.path / str(epoch)} cannot be read ({reason}): it is removed and the"
                  " chunk trains from its start", file=sys.stderr)  # fmt: skip
            self.remove()
            return None
        if models != self.padded:
            return None
        return epoch, restored.states, snapshots

    def save(self, epoch: int, states: Any, snapshots: dict) -> None:
        """Saves the states after `epoch` epochs (blocking, so a kill right after cannot leave half of it).

        One that would not fit is refused before Orbax starts. A save that fails anyway (a full disk: Orbax
        raises ValueError("RESOURCE_EXHAUSTED ...") from its threads and logs each) leaves no partial
        checkpoint and becomes one UserError line; earlier checkpoints are kept.
        """
        needed = sum(leaf.nbytes for leaf in jax.tree.leaves(states))
        self.manager()  # creates the folder
        if needed > free_bytes(self.path):
            raise UserError(
                f"cannot write a checkpoint of {size_text(needed)} into {self.path}: only"
                f" {size_text(free_bytes(self.path))} free; free some space (or set train.checkpoint_minutes"
                " higher) and rerun the same command (finished models are kept)"
            )
        absl_logger = logging.getLogger("absl")
        level = absl_logger.level
        absl_logger.setLevel(logging.CRITICAL)  # our one line replaces Orbax's per-thread error logs
        try:
            with interrupts_held():
                self.manager().save(
                    epoch,
                    args=ocp.args.Composite(
                        states=ocp.args.StandardSave(states),
                        records=ocp.args.JsonSave({"models": self.padded, "snapshots": snapshots}),
                    ),
                )
                self.manager().wait_until_finished()
        except Exception as error:  # Orbax and TensorStore raise several types for one I/O fault
            self._manager.close()
            self._manager = None
            for partial in self.path.glob("*orbax-checkpoint-tmp*"):
                shutil.rmtree(partial, ignore_errors=True)
            text = " ".join(str(error).split())
            reason = "no space left on device" if "No space left on device" in text else text[:300]
            raise UserError(
                f"cannot write a checkpoint into {self.path}: {reason}; free some space (or set"
                " train.checkpoint_minutes higher) and rerun the same command (finished models are kept)"
            ) from None
        finally:
            absl_logger.setLevel(level)

    def remove(self) -> None:
        if self._manager is not None:
            self._manager.close()
            self._manager = None
        shutil.rmtree(self.path, ignore_errors=True)
        if self.path.parent.is_dir() and not any(self.path.parent.iterdir()):
            self.path.parent.rmdir()


@contextmanager
def interrupts_held() -> Iterator[None]:
    """SIGINT held while the block runs and raised as KeyboardInterrupt once it has ended (in place of the
    block's own error, if it raised one: an interrupt is never swallowed); elsewhere than in the main
    thread, where no handler can be set, a no-op."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda number, frame: received.append(number))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received and previous is not signal.SIG_IGN:
            raise KeyboardInterrupt
