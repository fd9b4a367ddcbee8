"""The one error type that command-line entry points turn into a single line and exit status 2."""

import sys
from collections.abc import Callable
from functools import wraps


class UserError(Exception):
    """Bad input from the user (config, data, run folder); the message is shown as one line."""


def exits_cleanly(main: Callable[..., int | None]) -> Callable[..., int]:
    """Wraps a CLI `main`: a UserError becomes `error: MESSAGE` on stderr and exit status 2."""

    @wraps(main)
    def wrapped(*args, **kwargs) -> int:
        try:
            return main(*args, **kwargs) or 0
        except UserError as error:
            message = " ".join(str(error).split())
            print(f"error: {message}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("interrupted: finished models are saved; rerun the same command to resume", file=sys.stderr)
            return 130

    return wrapped
