"""The Python API's arguments, checked as strictly as the command line checks its options.

Each function takes a value as a caller may pass it and returns it in the one type the audit uses, or raises
one `UserError` naming the argument: never a bare TypeError, ValueError or IndexError, and never a silent
coercion (a float is not an integer, a bool is neither a number nor an index, a string is not a list).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lira_jax.errors import UserError

TO_NUMPY = ".detach().cpu().numpy()"
NUMERIC = "biuf"  # the dtype kinds an input may have: bool, integers, floats


def as_numpy(value: Any, name: str) -> np.ndarray:
    """value as a NumPy array (memmaps stay memmaps). A PyTorch tensor on the CPU is read without a copy
    (detached: the caller's graph is untouched); on another device it is a UserError naming
    `.detach().cpu().numpy()`."""
    if value is None:
        raise UserError(f"{name} is None: pass an array")
    if isinstance(value, np.ndarray) and value.dtype.kind in NUMERIC:
        return value
    if type(value).__module__.split(".")[0] == "torch" and hasattr(value, "detach"):
        device = getattr(getattr(value, "device", None), "type", "cpu")
        if device != "cpu":
            raise UserError(f"{name} is a PyTorch tensor on {device}: pass {name}{TO_NUMPY}")
        return value.detach().numpy()
    try:
        array = np.asarray(value)
    except (TypeError, ValueError, RuntimeError) as error:
        raise UserError(
            f"{name} cannot be read as an array ({error}); pass a NumPy array, e.g. {name}{TO_NUMPY}"
        ) from None
    if array.dtype.kind not in NUMERIC:
        raise UserError(
            f"{name} is not a numeric array (dtype {array.dtype}); pass a NumPy array, e.g. {name}{TO_NUMPY}"
        )
    return array


def integer(value: Any, name: str, low: int | None = None, high: int | None = None) -> int:
    """value as an int: a Python or NumPy integer (not a bool, a float or a string) in [low, high]."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | np.integer):
        raise UserError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]"
        raise UserError(f"{name} must be an integer in {bounds}, got {value}")
    return value


def number(value: Any, name: str, low: float, high: float, *, open_low: bool = False, open_high: bool = False) -> float:
    """value as a float: a finite Python or NumPy number (not a bool or a string) in [low, high], either end
    open if asked."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.integer | np.floating):
        raise UserError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    value = float(value)
    inside = (low < value if open_low else low <= value) and (value < high if open_high else value <= high)
    if not (math.isfinite(value) and inside):
        bounds = f"{'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}"
        raise UserError(f"{name} must be a finite number in {bounds}, got {value}")
    return value


def choice(value: Any, name: str, choices: Sequence[str]) -> str:
    """value, which must be one of the strings `choices`."""
    if not isinstance(value, str) or value not in choices:
        raise UserError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def text(value: Any, name: str, optional: bool = False) -> str | None:
    """value, which must be a string (or None where optional)."""
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise UserError(f"{name} must be a string, got {type(value).__name__}")
    return value


def flag(value: Any, name: str) -> bool:
    """value, which must be True or False."""
    if not isinstance(value, bool | np.bool_):
        raise UserError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def path(value: Any, name: str) -> Path:
    """value, a str or os.PathLike, as a Path."""
    if not isinstance(value, str | os.PathLike) or not str(value):
        raise UserError(f"{name} must be a file path (str or pathlib.Path), got {value!r}")
    return Path(value)


def names(value: Any, name: str, known: Sequence[str]) -> list[str] | None:
    """None, the command line's comma-separated string ("lira_online,rmia_online") or a sequence of strings,
    each one of `known`, without repeats, as a list (None stays None)."""
    if value is None:
        return None
    if isinstance(value, str):
        chosen = [part.strip() for part in value.split(",") if part.strip()]
    elif isinstance(value, Sequence | np.ndarray) and all(isinstance(item, str) for item in value):
        chosen = list(value)
    else:
        raise UserError(f"{name} must be a comma-separated string or a list of names, got {value!r}")
    unknown = [item for item in chosen if item not in known]
    if not chosen or unknown:
        what = f"unknown {', '.join(map(repr, unknown))}: " if unknown else ""
        raise UserError(f"{what}{name} takes names from: {', '.join(known)}; got {value!r}")
    if len(set(chosen)) != len(chosen):
        raise UserError(f"{name} names each only once, got {chosen}")
    return chosen


def indices(value: Any, name: str, size: int, what: str = "indices") -> list[int]:
    """An integer or a sequence (or 1-D integer array) of distinct integers in [0, size), as a list; what:
    what the message calls them (e.g. "model indices")."""
    if isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_):
        value = [value]
    if isinstance(value, np.ndarray) and value.ndim != 1:
        raise UserError(f"{name} must be one index or a list of them, got an array of shape {list(value.shape)}")
    if isinstance(value, str | bytes) or not isinstance(value, Sequence | np.ndarray):
        raise UserError(f"{name} must be an integer or a list of integers, got {value!r}")
    chosen = [integer(item, f"each of {name}") for item in value]
    if not chosen or len(set(chosen)) != len(chosen) or min(chosen) < 0 or max(chosen) >= size:
        raise UserError(f"{name} must be distinct {what} in [0, {size}), got {chosen[:10]}")
    return chosen


def images(value: Any, num_examples: int) -> np.ndarray:
    """The inputs drawn as thumbnails: an array (or CPU tensor) of num_examples pictures; else UserError."""
    array = as_numpy(value, "images")
    if problem := picture_problem(array.dtype, array.shape, num_examples):
        raise UserError(f"images {problem}")
    return array


def picture_problem(dtype: np.dtype, shape: tuple[int, ...], num_examples: int) -> str | None:
    """Why an array of `dtype` and `shape` is not num_examples pictures [N, H, W], [N, H, W, 1 or 3],
    [N, 1 or 3, H, W] or [N, H*W] (a square, at least 4x4) of a numeric dtype (a phrase), or None."""
    side = math.isqrt(shape[1]) if len(shape) == 2 else 0
    layouts = (
        (len(shape) == 2 and side * side == shape[1] and side >= 4)
        or len(shape) == 3
        or (len(shape) == 4 and (shape[3] in (1, 3) or shape[1] in (1, 3)))
    )
    if np.dtype(dtype).kind not in "biuf" or not shape or shape[0] != num_examples or not layouts:
        wanted = "[N, H, W], [N, H, W, 1 or 3], [N, 1 or 3, H, W] or [N, H*W]"
        return f"must be numeric {wanted} with N = {num_examples}, got {np.dtype(dtype)}{list(shape)}"
    return None


def accuracy(value: Any, lengths: Sequence[int] = ()) -> dict[str, list[float]]:
    """{"train": [M], "test": [M]}, each a number in [0, 1] or NaN (not measured), M one of `lengths` where
    any are given; else UserError."""
    if not isinstance(value, Mapping) or set(value) != {"train", "test"}:
        raise UserError(f'accuracy must be {{"train": [...], "test": [...]}}, got {value!r:.80}')
    checked = {}
    for key in ("train", "test"):
        values = value[key]
        if isinstance(values, str) or not isinstance(values, Sequence | np.ndarray):
            raise UserError(f'accuracy["{key}"] must be a list of numbers, got {values!r:.80}')
        checked[key] = [
            float("nan")
            if isinstance(item, float | np.floating) and math.isnan(item)
            else number(item, f'each of accuracy["{key}"]', 0.0, 1.0)
            for item in values
        ]
    if len(checked["train"]) != len(checked["test"]):
        raise UserError(
            f"accuracy's train and test lists differ in length: {len(checked['train'])}, {len(checked['test'])}"
        )
    if lengths and len(checked["train"]) not in lengths:
        raise UserError(
            f"accuracy lists {len(checked['train'])} models; give one value per target or per model"
            f" ({' or '.join(map(str, dict.fromkeys(lengths)))})"
        )
    return checked
