"""RUN/canaries.json (docs/run_folder.md): the canaries a run appended after its N0 ordinary examples, read and
checked; the attack leaves them out (`without_canaries`), the dp-audit study reads only them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lira_jax.errors import UserError

CANARIES_FILE = "canaries.json"


@dataclass(frozen=True)
class Canaries:
    """count K canaries of `kind` at example indices first..first+K−1 (first = N0, the ordinary examples)."""

    count: int
    kind: str
    first: int
    path: Path


def read_canaries(run_dir: str | Path, num_examples: int) -> Canaries | None:
    """RUN/canaries.json checked against the run's N = N0 + K examples, or None when the run has none."""
    path = Path(run_dir) / CANARIES_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(f"{path} is not readable JSON: {error}") from None
    count = record.get("count") if isinstance(record, dict) else None
    indices = record.get("indices") if isinstance(record, dict) else None
    if not (type(count) is int and 0 < count < num_examples):
        raise UserError(f"{path}: count must be an integer in [1, {num_examples}) (the run's examples), got {count!r}")
    first = num_examples - count
    if indices != list(range(first, num_examples)):
        raise UserError(
            f"{path}: indices must be the last {count} examples of the run, {first}..{num_examples - 1} "
            "(canaries are appended after the ordinary examples)"
        )
    kind = record.get("kind")
    if not isinstance(kind, str):
        raise UserError(f"{path}: kind must be a string, got {kind!r}")
    return Canaries(count=count, kind=kind, first=first, path=path)


def without_canaries(run: dict[str, Any], canaries: Canaries) -> dict[str, Any]:
    """An `open_source` result of a run folder restricted to its ordinary examples 0..N0−1 (views, no copies), with
    canaries.json among the files read."""
    ordinary = slice(0, canaries.first)
    sliced = {name: run[name] if run[name] is None else run[name][:, ordinary] for name in ("keep", "scores", "logits")}
    return {
        **run,
        **sliced,
        "labels": run["labels"][ordinary],
        "files": [*run["files"], canaries.path],
        "summary": f"{run['summary']}, {canaries.path}",
    }
