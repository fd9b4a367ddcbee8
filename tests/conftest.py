"""Shared test set-up: a persistent XLA compilation cache for the suite and the processes it starts, the tiny
training config written once, one trained tiny run shared by every test that only reads it, and the `slow`
tests scheduled first.

Most of the suite's time is XLA compiling the same small programs again in fresh processes (pytest-xdist
workers, `python -m lira_jax.train` subprocesses): the cache lets each program compile once per machine.
"""

import fcntl
import importlib.metadata
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def compilation_cache_dir() -> Path:
    """One folder per jax and jaxlib version, shared by every worker, subprocess and later run on the machine."""
    versions = "-".join(importlib.metadata.version(name) for name in ("jax", "jaxlib"))
    return Path(tempfile.gettempdir()) / f"lira-jax-tests-xla-cache-{versions}"


# Set before anything imports JAX (it reads them once, at import); subprocesses inherit them. A cache the
# user chose is kept.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(compilation_cache_dir()))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")  # cache every program, however quick
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "-1")  # and however small

CONFIGS = Path(__file__).resolve().parent.parent / "configs"  # the repository's recipes

# Seconds after which a subprocess or a wait is taken for hung: only a guard against a hang, never a budget
# (each takes seconds; on a loaded machine the suite must still pass).
HANG_GUARD_S = 900

# The tiny training config: small enough to train in seconds, large enough for every model to learn a little.
# One data size and width everywhere, so that runs of equal chunk shapes share their compiled programs.
TINY = {"data.limit": "200", "train.num_models": "4", "train.epochs": "2", "model.width": "4"}


def tiny_settings(*changes: str) -> list[str]:
    """`--set KEY=VALUE` arguments of the tiny config, with `changes` ("key=value") replacing or adding keys."""
    settings = dict(TINY)
    for change in changes:
        key, _, value = change.partition("=")
        settings[key] = value
    return [part for key, value in settings.items() for part in ("--set", f"{key}={value}")]


# The shared trained run: the tiny config queried under two views, with one epoch snapshot, attacked.
TINY_RUN = tiny_settings("query.views=['identity', 'mirror']", "query.save_epochs=[1]")


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock on `path` (created if missing), across processes."""
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder trained with TINY_RUN and attacked, once per suite: under pytest-xdist every worker has
    its own session, so the first to take the lock trains it into the folder all workers share
    (pytest-xdist's documented pattern). Read it only; a test that changes a run copies it first."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the run's folder, above every worker's own
    out = root / "tiny-run"
    with locked(root / "tiny-run.lock"):
        if not (out / "metrics.json").is_file():
            from lira_jax.train import main

            assert main(["--out", str(out), *TINY_RUN, "--quiet"]) == 0
    return out


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow tests first, so that the workers do not wait on one long test at the end (the same order in
    every xdist worker: a stable sort of the collected order)."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
