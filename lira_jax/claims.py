"""Claims: which process trains which model, so that two `train` processes on one run folder never train
the same model (and never write the same chunk's checkpoints).

Model i is claimed by locking byte i of RUN/.claims. These are POSIX record locks (fcntl.lockf): the kernel
drops them when their holder ends, SIGKILL included, so a killed run never blocks the next one, and they
work on NFS. A process claims the models it is about to train; a model another live process holds is
left to it, and the holder's pid is named. Job-array slices (--models) claim disjoint models and never
meet. The locks live as long as the `Claims` object's open file: leaving its `with` block closes the
file and drops them all.
"""

import errno
import fcntl
import os
import struct
import sys
from pathlib import Path

import numpy as np

from lira_jax.errors import UserError, compact_ranges
from lira_jax.writing import disk_errors

CLAIMS_FILE = ".claims"


class Claims:
    """This process's claims on the models of the run folder `run_dir`."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / CLAIMS_FILE
        with disk_errors(self.path):
            self._file = open(self.path, "a+b")  # noqa: SIM115 (held open: closing it drops the locks)

    def __enter__(self) -> "Claims":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._file.close()

    def claim(self, model_indices: np.ndarray, done: np.ndarray) -> tuple[np.ndarray, str | None]:
        """Locks the models this process will train and returns (the claimed models that `done` (bool[M],
        read after locking) does not mark finished, a note naming the models another process holds or
        None)."""
        claimed, busy = [], []
        for index in np.asarray(model_indices).tolist():
            try:
                fcntl.lockf(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, index)
                claimed.append(index)
            except OSError as error:
                if error.errno not in (errno.EACCES, errno.EAGAIN):
                    raise UserError(f"cannot lock models in {self.path}: {error.strerror}") from None
                busy.append(index)
        mine = np.array(claimed, dtype=np.int64)
        mine = mine[~done[mine]]  # another process may have finished some since they were read
        if not busy:
            return mine, None
        holder = lock_holder(self._file, busy[0])
        by = f"another process (pid {holder})" if holder else "another process"
        return mine, f"models {compact_ranges(busy)} are being trained by {by}: this process leaves them to it"


def lock_holder(handle, index: int) -> int | None:
    """The pid holding the lock on byte `index` of an open file (Linux's struct flock), or None."""
    if sys.platform != "linux":
        return None
    layout = "@hhqqi"
    request = struct.pack(layout, fcntl.F_WRLCK, os.SEEK_SET, index, 1, 0)
    try:
        kind, _, _, _, pid = struct.unpack(layout, fcntl.fcntl(handle, fcntl.F_GETLK, request))
    except OSError:
        return None
    return pid if kind != fcntl.F_UNLCK and pid > 0 else None
