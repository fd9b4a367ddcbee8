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


def test_an_interrupt_is_not_swallowed_by_an_error_of_the_block():
    with pytest.raises(KeyboardInterrupt), checkpoints.interrupts_held():
        os.kill(os.getpid(), signal.SIGINT)
        raise ValueError("Orbax failed too")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def _records_garbled(step):
    (step / "records" / "metadata").write_text("[1, 2")


def _records_a_list(step):
    (step / "records" / "metadata").write_text("[1, 2]")


def _states_truncated(step):
    for file in (step / "states").rglob("*"):
        if file.is_file() and file.stat().st_size:
            file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])


def _states_gone(step):
    import shutil

    shutil.rmtree(step / "states")


def _snapshots_not_an_object(step):
    (step / "records" / "metadata").write_text('{"models": [0, 1, 2, 3], "snapshots": [1]}')


DAMAGED_CHECKPOINTS = [_records_garbled, _records_a_list, _states_truncated, _states_gone, _snapshots_not_an_object]


@pytest.mark.parametrize("damage", DAMAGED_CHECKPOINTS, ids=lambda damage: damage.__name__.strip("_"))
def test_a_damaged_checkpoint_is_removed_once_and_the_chunk_starts_over(tmp_path, capsys, damage):
    checkpoints.ChunkCheckpoint(tmp_path, np.arange(4)).save(2, STATES, {})
    (step,) = (tmp_path / "checkpoints").glob("chunk-*/2")
    damage(step)
    assert checkpoints.ChunkCheckpoint(tmp_path, np.arange(4)).restore(_abstract(STATES)) is None
    note = capsys.readouterr().err
    assert note.startswith("note: the checkpoint ") and "cannot be read" in note and "Traceback" not in note
    assert not (tmp_path / "checkpoints").exists()  # removed: the next run does not meet it again
    assert checkpoints.ChunkCheckpoint(tmp_path, np.arange(4)).restore(_abstract(STATES)) is None
    assert capsys.readouterr().err == ""
