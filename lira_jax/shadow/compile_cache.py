"""JAX's persistent compilation cache, on by default: a program is compiled once per machine and recipe.

Why: compiling dominates small and medium runs on an accelerator (measured on an H200: ResNet-18's
training step 19 to 85 s to compile, a 16-model run 107 s of wall time for 12 s of training). With the
cache, a resumed run, a second run of the same recipe, every task of a job array, `auto`'s candidates
and the query step load what an earlier process compiled, and on GPUs XLA's autotuning results (which
convolution algorithm, which fusion tiling) are kept beside them too.

Where: train.compilation_cache if the config sets it ("off" disables it), else the environment variable
LIRA_JAX_COMPILATION_CACHE (a folder, or "off"), else JAX's own JAX_COMPILATION_CACHE_DIR, else
$XDG_CACHE_HOME/lira_jax/jax (~/.cache/lira_jax/jax). A cache that cannot be created or written is
only a cost: training goes on without it. Entries are keyed by the program, the JAX version and the
device, so a stale entry is never used. The default folder is kept under MAX_BYTES, least recently used
first; another folder is left to JAX's own settings (JAX_COMPILATION_CACHE_MAX_SIZE), since other
programs may write there too. JAX treats the folder as trusted code: do not share it with strangers.

A damaged entry does not linger: JAX writes entries in place, so a full disk or a kill leaves a truncated
one, which JAX would fail to read on every later run (a warning each time) and never rewrite, as it
writes only missing entries. An entry that fails to load is removed, so the program is compiled again and
written whole (`_removing_damaged`). A cache folder inside the run folder is refused before anything is
created (`refuse_inside`): the cache would make --out a folder that is not a run.
"""

import contextlib
import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
from jax._src import compilation_cache as jax_cache  # where JAX's compiler reads each entry
from jax.experimental.compilation_cache import compilation_cache

from lira_jax.errors import UserError

ENVIRONMENT = "LIRA_JAX_COMPILATION_CACHE"
MAX_BYTES = 8 * 2**30
# Programs that compile faster than this are not worth a file (JAX's default is 1 s; the digits CNN's
# epoch compiles in about 2 s on the 2-core CPU and its query step in under 1 s).
MIN_COMPILE_SECONDS = 0.5


def cache_folder(setting: str) -> Path | None:
    """The cache folder for train.compilation_cache = `setting` ("" = the default, "off" = none), or None."""
    chosen = setting or os.environ.get(ENVIRONMENT) or os.environ.get("JAX_COMPILATION_CACHE_DIR")
    if chosen == "off":
        return None
    return Path(chosen).expanduser() if chosen else default_folder()


def default_folder() -> Path:
    """$XDG_CACHE_HOME/lira_jax/jax (~/.cache/lira_jax/jax): the cache where nothing names another."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lira_jax" / "jax"


def refuse_inside(setting: str, out: Path) -> None:
    """UserError if the cache folder of `setting` would lie in the run folder `out` (or be it)."""
    folder = cache_folder(setting)
    if folder is not None and Path(os.path.realpath(folder)).is_relative_to(os.path.realpath(out)):
        raise UserError(
            f"the compilation cache {folder} lies in the run folder {out}: give train.compilation_cache (or"
            f" {ENVIRONMENT}) a folder outside it, or 'off'"
        )


def _removing_damaged(read: Callable[..., Any]) -> Callable[..., Any]:
    """JAX's reader of one cache entry, removing an entry that fails to load (truncated, garbled) and
    reading it as missing, so that JAX compiles the program again and writes the entry anew."""

    @functools.wraps(read)
    def read_or_remove(cache_key: str, *args: Any, **kwargs: Any) -> Any:
        try:
            return read(cache_key, *args, **kwargs)
        except jax_cache.CacheVerificationError:
            raise
        except Exception as error:
            folder = Path(jax.config.jax_compilation_cache_dir)
            for suffix in ("-cache", "-atime"):  # the entry and its access time (lru_cache.py)
                with contextlib.suppress(OSError):  # a cache that cannot be changed is read as missing all the same
                    (folder / f"{cache_key}{suffix}").unlink(missing_ok=True)
            reason = " ".join(f"{type(error).__name__}: {error}".split())[:200]
            print(
                f"note: removed a damaged compiled program from {folder} ({reason}); compiling it again",
                file=sys.stderr,
            )
            return None, None

    read_or_remove.removes_damaged = True
    return read_or_remove


def enable(setting: str) -> Path | None:
    """Turns the persistent cache on at `cache_folder(setting)` (off for "off"), before anything is
    compiled or between runs of one process, and returns the folder, or None where it is off or cannot be
    created. JAX's own settings of the entry size and compile time below which nothing is kept
    (JAX_PERSISTENT_CACHE_MIN_*) win over ours."""
    folder = cache_folder(setting)
    if folder is not None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            folder = None
    if folder is None or not os.access(folder, os.W_OK):
        jax.config.update("jax_enable_compilation_cache", False)
        return None
    if jax.config.jax_compilation_cache_dir != str(folder):
        jax.config.update("jax_compilation_cache_dir", str(folder))
        compilation_cache.reset_cache()  # JAX opens its cache once: a process's second run may name another
    jax.config.update("jax_enable_compilation_cache", True)
    if not getattr(jax_cache.get_executable_and_time, "removes_damaged", False):
        jax_cache.get_executable_and_time = _removing_damaged(jax_cache.get_executable_and_time)
    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", MIN_COMPILE_SECONDS)
    if folder == default_folder():
        # Capped, with a file lock (safe for concurrent runs), only where no other program writes: JAX's
        # eviction needs its access-time file beside every entry, which an uncapped writer leaves out.
        jax.config.update("jax_compilation_cache_max_size", MAX_BYTES)
    jax.config.update("jax_persistent_cache_enable_xla_caches", "all")  # GPU autotuning and kernels too
    return folder
