"""Writing files so that a fault never leaves a damaged or half-written one behind (both halves use it).

- Atomic: an output is written to a temporary file in its own folder and renamed over the target, so a
  reader (or a later run) sees the old file or the new one; the temporary file is removed on any failure.
- A set of outputs all or nothing (`output_set`): inside the block every atomic write is staged, and the
  renames all happen when the block ends; a failure before them removes every temporary, leaving the old
  set as it was.
- Permissions: files and folders get the user's umask, like any other program's (temporary files and
  folders from `tempfile` would otherwise stay 0600 / 0700 after the rename, closing shared folders).
- Disk faults (full disk, quota, read-only folder, no permission, a folder where a file should be) become
  one-line UserErrors naming the path.
- Memory-mapped arrays get their disk blocks when created (`allocate`): a write into a mapped page that
  has no block on a full disk is a SIGBUS, not an error, so the blocks must exist before the rows come.
"""

import errno
import math
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from lira_jax.errors import UserError

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
# The open `output_set`'s staged writes, {target: its temporary}, renamed when it ends; None outside one.
_STAGED: ContextVar[dict[Path, Path] | None] = ContextVar("staged outputs", default=None)


def umask() -> int:
    """The process's umask (reading it means setting it: put straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    return 0o666 & ~umask()


def folder_mode() -> int:
    return 0o777 & ~umask()


def size_text(num_bytes: float) -> str:
    """1536 -> "1.5 KiB"."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if num_bytes < 1024 or unit == "TiB":
            return f"{num_bytes:.0f} {unit}" if unit == "bytes" else f"{num_bytes:.1f} {unit}"
        num_bytes /= 1024
    raise AssertionError("unreachable")


def error_text(path: Path, error: OSError) -> str:
    """One line for an OSError met while writing `path`, saying what to do when the disk is full."""
    reason = error.strerror or str(error)
    if error.errno in DISK_FULL:
        return f"cannot write {path}: {reason}; free some space and rerun the same command (finished work is kept)"
    return f"cannot write {path}: {reason}"


@contextmanager
def disk_errors(path: Path) -> Iterator[None]:
    """Turns an OSError raised inside the block into a one-line UserError about writing `path`."""
    try:
        yield
    except OSError as error:
        raise UserError(error_text(path, error)) from None


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A fresh temporary path next to `path` (same suffix, for writers that go by it, e.g. savefig) to
    write into; renamed to `path` when the block ends (inside an `output_set`: when the set's block ends),
    removed if it raises (or is interrupted)."""
    path = Path(path)
    temporary = _temporary_beside(path)
    try:
        yield temporary
        os.chmod(temporary, file_mode())
        with open(temporary, "rb") as written:
            os.fsync(written.fileno())
        staged = _STAGED.get()
        if staged is None:
            os.replace(temporary, path)
            return
        earlier = staged.pop(path, None)  # the same output written twice in one set: the later one stands
        if earlier is not None:
            earlier.unlink(missing_ok=True)
        staged[path] = temporary
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


@contextmanager
def output_set() -> Iterator[None]:
    """Makes every atomic write inside the block one set: each is written whole to its temporary file, and
    all are renamed over their targets together when the block ends without an error. If the block raises
    (or is interrupted), every temporary is removed and no target has changed. A rename failing part-way
    (it cannot for lack of space: each temporary lies in its target's folder) is a one-line UserError, and
    only a kill among the renames can leave files of two sets side by side."""
    staged: dict[Path, Path] = {}
    token = _STAGED.set(staged)
    try:
        yield
    except BaseException:
        for temporary in staged.values():
            temporary.unlink(missing_ok=True)
        raise
    finally:
        _STAGED.reset(token)
    pending = list(staged.items())
    for position, (path, temporary) in enumerate(pending):
        try:
            os.replace(temporary, path)
        except OSError as error:
            for _, left in pending[position:]:
                left.unlink(missing_ok=True)
            raise UserError(error_text(path, error)) from None


def write_atomically(path: Path, content: str | bytes) -> None:
    """Replaces `path` with `content` atomically; any OSError is a one-line UserError."""
    data = content.encode() if isinstance(content, str) else content
    with disk_errors(path), atomic_path(path) as temporary:
        temporary.write_bytes(data)


def _temporary_beside(path: Path) -> Path:
    """A new empty file next to `path`, named after it (same suffix, for writers that go by it)."""
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.partial-", suffix=path.suffix)
    os.close(handle)
    return Path(name)


def check_writable(folder: Path, what: str, path: Path | None = None) -> None:
    """UserError `cannot write WHAT: ...` unless a file can be created in `folder` (and is then removed): the
    one test that holds for root too, for read-only mounts and for /proc or /sys, where permissions say
    nothing. path: the file to be written in folder, whose temporary (`atomic_path`) is the file tried, so
    that a name too long for its temporary is refused too."""
    try:
        probe = _temporary_beside(path if path is not None else folder / ".lira-jax-probe")
    except OSError as error:
        raise UserError(f"cannot write {what}: no file can be created in {folder} ({error.strerror})") from None
    probe.unlink()


def make_folder(path: Path) -> None:
    """mkdir -p with the umask's permissions; an OSError is a one-line UserError."""
    with disk_errors(path):
        path.mkdir(parents=True, exist_ok=True)


def allocate(path: Path) -> None:
    """Gives every byte of the file `path` its disk blocks now (posix_fallocate), so that later writes
    through a memory map cannot meet a full disk. On a full disk this raises OSError(ENOSPC); where the
    file system cannot allocate ahead (EOPNOTSUPP) the file is left as it is."""
    with open(path, "r+b") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size == 0:
            return
        try:
            os.posix_fallocate(handle.fileno(), 0, size)
        except OSError as error:
            if error.errno != errno.EOPNOTSUPP:
                raise


def free_bytes(folder: Path) -> int:
    """Bytes free to this user in the file system of `folder` (which must exist)."""
    stats = os.statvfs(folder)
    return stats.f_bavail * stats.f_frsize


def strict_json(value: Any) -> Any:
    """`value` with every non-finite float as None (null: not measurable), so json.dumps writes strict JSON."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: strict_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [strict_json(item) for item in value]
    return value


def check_disk_space(folder: Path, shapes: dict, copies: int) -> None:
    """Refuses (before anything is written) a run whose arrays would not fit into `folder`'s free space.

    shapes: {name: (dtype, shape)} of the arrays (`store.array_shapes`); copies: how many of each are written.
    """
    needed = copies * sum(dtype.itemsize * math.prod(shape) for dtype, shape in shapes.values())
    free = free_bytes(folder)
    if needed > free:
        sizes = ", ".join(f"{name} {list(shape)} {dtype}" for name, (dtype, shape) in shapes.items())
        raise UserError(
            f"the run needs {size_text(needed)} on disk ({sizes}, {copies} cop{'y' if copies == 1 else 'ies'}) but"
            f" {folder} has {size_text(free)} free: free space, train fewer models, or set query.logits_dtype ="
            " 'float16' or 'none'"
        )
