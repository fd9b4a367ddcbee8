""".npy files from users, read so that anything but a plain array is one error line naming the file.

`read_npy` checks a file from its header alone before NumPy maps or reads it: it must be a .npy (an .npz
archive, a pickle or text are named as such), hold no Python objects, and hold every byte its header
declares (a header declaring a huge shape on a tiny file is an error about that file, never an attempt to
allocate the shape). Any byte order is read: memmaps keep the file's order, which every computation here
accepts; arrays read into memory come back in the machine's order.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from lira_jax.errors import UserError
from lira_jax.writing import size_text

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"  # np.savez writes a zip archive, whatever the file is called


def read_npy(path: str | Path, *, mmap: bool = True) -> np.ndarray:
    """The array in the .npy file `path`: a read-only memmap (mmap=True; an empty array is read into
    memory) or an in-memory array in native byte order (mmap=False). UserError naming the file if it is
    not a .npy, holds objects, is shorter than its header says, or cannot be read."""
    path = Path(path)
    dtype, shape = npy_header(path)
    empty = math.prod(shape) == 0
    try:
        array = np.load(path, mmap_mode="r" if mmap and not empty else None, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise UserError(f"cannot read {path}: {error}") from None
    if not (mmap and not empty) and not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    return array


def npy_header(path: Path) -> tuple[np.dtype, tuple[int, ...]]:
    """(dtype, shape) from the header of the .npy file `path`, after checking that the file holds them."""
    try:
        with open(path, "rb") as handle:
            start = handle.read(len(NPY_MAGIC))
            if start.startswith(ZIP_MAGIC):
                raise UserError(
                    f"{path} is an .npz archive (np.savez), not a .npy file: save the one array with np.save"
                )
            if start != NPY_MAGIC:
                raise UserError(f"{path} is not a .npy file (it does not begin with NumPy's magic bytes)")
            handle.seek(0)
            version = np.lib.format.read_magic(handle)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
            offset, size = handle.tell(), os.fstat(handle.fileno()).st_size
    except UserError:
        raise
    except (OSError, ValueError, EOFError, SyntaxError) as error:
        raise UserError(f"cannot read {path}: {getattr(error, 'strerror', None) or error}") from None
    if dtype.hasobject:
        raise UserError(f"{path} holds Python objects (a pickle), which are never loaded: save a numeric array")
    needed = math.prod(shape) * dtype.itemsize
    if size - offset < needed:
        raise UserError(
            f"{path} declares {dtype}{list(shape)} ({size_text(needed)}) in its header but holds "
            f"{size_text(max(size - offset, 0))} of data: the file is truncated or its header is wrong"
        )
    return dtype, tuple(shape)


def load_array(path: Path, required: bool = True, mmap: bool = True) -> np.ndarray | None:
    """The .npy at `path` (`read_npy`: memmapped unless mmap=False); None if it is absent and not required.
    Something else by that name (a folder, a pipe) is an error either way, never taken for an absent file."""
    if path.exists() and not path.is_file():
        raise UserError(f"{path} is not a regular file")
    if not path.is_file():
        if required:
            raise UserError(f"{path} is missing")
        return None
    return read_npy(path, mmap=mmap)
