"""The attacks' progress: a live bar on a terminal, one plain line per finished family anywhere else.

On a terminal (stderr is a tty) a tqdm bar appears once scoring has taken SHOW_AFTER seconds; tqdm draws
only when it is updated, so a single long step (one attack family's pass over every example) would leave
it blank until the step ends: a ticker thread redraws it every TICK seconds, showing the elapsed time and
the family at work. The bar is cleared at the end.

Anywhere else (a file, a pipe, a notebook's stderr) nothing is redrawn: each finished family is one line,
    attacks: lira_online, lira_online_fixed_var scored in 1.2 s (2 of 5)
so a log reads top to bottom without carriage returns.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TextIO

SHOW_AFTER = 3.0  # seconds of work before the bar shows
TICK = 1.0  # seconds between redraws while a step runs


class _Silent:
    """Nothing reported (a caller that prints nothing either)."""

    def start(self, names: Sequence[str]) -> None:
        pass

    def finish(self, names: Sequence[str]) -> None:
        pass


class _Lines:
    """Off a terminal: one line per finished family on `stream`."""

    def __init__(self, total: int, stream: TextIO):
        self.total, self.stream, self.done = total, stream, 0
        self.started = time.monotonic()

    def start(self, names: Sequence[str]) -> None:
        self.started = time.monotonic()

    def finish(self, names: Sequence[str]) -> None:
        self.done += len(names)
        seconds = time.monotonic() - self.started
        print(f"attacks: {', '.join(names)} scored in {seconds:.1f} s ({self.done} of {self.total})", file=self.stream)
        self.stream.flush()


class _Bar:
    """On a terminal: a tqdm bar of attacks, the family at work as its postfix."""

    def __init__(self, bar: Any):
        self.bar = bar

    def start(self, names: Sequence[str]) -> None:
        self.bar.set_postfix_str(", ".join(names), refresh=False)

    def finish(self, names: Sequence[str]) -> None:
        self.bar.update(len(names))


@contextmanager
def attack_progress(
    total: int, *, quiet: bool = False, stream: TextIO | None = None, after: float = SHOW_AFTER
) -> Iterator[Any]:
    """Progress of `total` attacks scored family by family: `.start(names)` before a family, `.finish(names)`
    after it. stream: where to report (default stderr); a bar if it is a terminal, else plain lines;
    quiet: nothing at all."""
    stream = stream or sys.stderr
    if quiet:
        yield _Silent()
        return
    if not _is_terminal(stream):
        yield _Lines(total, stream)
        return
    from tqdm import tqdm

    started = time.monotonic()
    stop = threading.Event()
    with tqdm(total=total, desc="attacks", unit="attack", delay=after, leave=False, file=stream) as bar:

        def tick() -> None:
            while not stop.wait(TICK):
                if time.monotonic() - started >= after:
                    bar.refresh()

        ticker = threading.Thread(target=tick, daemon=True)
        ticker.start()
        try:
            yield _Bar(bar)
        finally:
            stop.set()
            ticker.join()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
