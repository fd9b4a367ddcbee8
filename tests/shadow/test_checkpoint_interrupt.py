"""SIGINT while Orbax writes or reads a checkpoint (issue 25 §5): held until Orbax is done, then raised as
KeyboardInterrupt, so the checkpoint is whole (a rerun restores it) and no Orbax thread is cut off (their
tracebacks, a crash, or the interrupt swallowed). The interrupt is sent from inside the save, never timed."""

import os
import signal

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from lira_jax.shadow import checkpoints

STATES = {"w": jnp.arange(24.0).reshape(4, 6), "b": jnp.zeros((4, 3))}


def _abstract(states):
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=a.sharding), states)


def _interrupting(method):
    def interrupted(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)  # delivered at once to this (the main) thread
        return method(*args, **kwargs)

    return interrupted


@pytest.mark.parametrize("moment", ["save", "wait_until_finished"])
def test_sigint_inside_a_checkpoint_save_leaves_it_whole_then_stops(tmp_path, moment):
    checkpoint = checkpoints.ChunkCheckpoint(tmp_path, np.arange(4))
    manager = checkpoint.manager()
    setattr(manager, moment, _interrupting(getattr(manager, moment)))
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(1, STATES, {"1": [{"train_accuracy": 0.5}]})
    assert not list(checkpoint.path.glob("*orbax-checkpoint-tmp*"))
    epoch, states, snapshots = checkpoints.ChunkCheckpoint(tmp_path, np.arange(4)).restore(_abstract(STATES))
    assert epoch == 1 and snapshots == {"1": [{"train_accuracy": 0.5}]}
    np.testing.assert_array_equal(states["w"], STATES["w"])


def test_sigint_inside_a_restore_is_raised_once_it_is_done(tmp_path):
    checkpoints.ChunkCheckpoint(tmp_path, np.arange(4)).save(2, STATES, {})
    reader = checkpoints.ChunkCheckpoint(tmp_path, np.arange(4))
    manager = reader.manager()
    manager.restore = _interrupting(manager.restore)
    with pytest.raises(KeyboardInterrupt):
        reader.restore(_abstract(STATES))
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the usual handler is back


def test_no_interrupt_means_nothing_is_raised_and_the_handler_is_restored():
    with checkpoints.interrupts_held():
        pass
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
