"""Command-line lists of models and examples: `--targets` and `--examples`."""

from __future__ import annotations

from collections.abc import Sequence

from lira_jax.errors import UserError


def parse_targets(spec: str, models: Sequence[int], name: str = "--targets") -> list[int]:
    """Model indices from `last`, `all`, `I,J,...` or `A:B` (B excluded); each must be a usable model.
    name: how messages call the argument (the API's "targets")."""
    spec = spec.strip()
    if spec == "all":
        return list(models)
    if spec == "last":
        return [models[-1]]
    try:
        if ":" in spec:
            start_text, _, stop_text = spec.partition(":")
            start, stop = int(start_text or 0), int(stop_text) if stop_text else max(models) + 1
            if not 0 <= start < stop <= max(models) + 1:  # checked before a huge range is ever built
                raise UserError(f"{name} {spec!r} must be A:B with 0 <= A < B <= {max(models) + 1}")
            chosen = list(range(start, stop))
        else:
            chosen = [int(part) for part in spec.split(",")]
    except ValueError:
        raise UserError(f"{name} must be last, all, I,J,... or A:B, got {spec!r}") from None
    missing = sorted(set(chosen) - set(models))
    if not chosen or missing or len(set(chosen)) != len(chosen):
        raise UserError(
            f"{name} {spec!r} must name distinct finished models (done: {len(models)}); not usable: {missing[:10]}"
        )
    return chosen


def parse_integers(text: str | None, option: str) -> list[int] | None:
    """A command-line list "I,J,..." as integers (None stays None); anything else is a UserError naming `option`."""
    if text is None:
        return None
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise UserError(f"{option} must be I,J,..., got {text!r}") from None
