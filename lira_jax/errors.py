"""The one error type that command-line entry points turn into a single line and exit status 2, and the
format of model ranges in its messages (`compact_ranges`)."""

import argparse
import sys
import warnings
from collections.abc import Callable, Sequence
from functools import wraps
from typing import NoReturn


class UserError(Exception):
    """Bad input from the user (config, data, run folder); the message is shown as one line."""


def exits_cleanly(main: Callable[..., int | None]) -> Callable[..., int]:
    """Wraps a CLI `main`: a UserError (or an unforeseen OSError or MemoryError) becomes `error: MESSAGE`
    on stderr and exit status 2. Python warnings raised meanwhile (a library's, about the same bad input)
    are held: shown once the command has finished, and dropped when it ends in an error, which comes alone."""

    @wraps(main)
    def wrapped(*args, **kwargs) -> int:
        with warnings.catch_warnings(record=True) as held:
            status = _one_line_errors(main, *args, **kwargs)
        if status not in (2, 130):  # the error or the interrupt line alone
            for warning in held:
                warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
        return status

    return wrapped


def _one_line_errors(main: Callable[..., int | None], *args, **kwargs) -> int:
    """main's exit status, every error it raises one line on stderr (`exits_cleanly`)."""
    try:
        return main(*args, **kwargs) or 0
    except UserError as error:
        message = " ".join(str(error).split())
        print(f"error: {message}", file=sys.stderr)
        return 2
    except OSError as error:  # a file fault no check foresaw (permissions, a full disk): still one line
        where = f" ({error.filename})" if error.filename else ""
        print(f"error: {error.strerror or error}{where}", file=sys.stderr)
        return 2
    except MemoryError:
        print("error: out of memory: use fewer models, examples or targets", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished models are saved; rerun the same command to resume", file=sys.stderr)
        return 130


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a bad command line as a UserError (one line, exit 2) instead of usage text."""

    def error(self, message: str) -> NoReturn:
        raise UserError(f"{message} (see {self.prog} --help)")


def compact_ranges(indices: Sequence[int]) -> str:
    """[0, 1, 2, 5, 7, 8] -> "0:3, 5, 7:9" (half-open ranges, as --models takes them)."""
    parts, start = [], None
    for position, index in enumerate(indices):
        if start is None:
            start = index
        if position + 1 == len(indices) or indices[position + 1] != index + 1:
            parts.append(str(start) if start == index else f"{start}:{index + 1}")
            start = None
    return ", ".join(parts)
