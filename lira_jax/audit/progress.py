"""A progress bar for work that may take a while: silent when it is quick, live while a step is long.

tqdm draws only when it is updated, so a single long step (one attack family's pass over every example)
would leave it blank until the step ends; a ticker thread redraws it every second instead, showing the
elapsed time and the step at work. Nothing is drawn off a terminal or before `after` seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

SHOW_AFTER = 3.0  # seconds of work before the bar shows
TICK = 1.0  # seconds between redraws while a step runs


@contextmanager
def progress_bar(total: int, desc: str, unit: str, after: float = SHOW_AFTER) -> Iterator[Any]:
    """A tqdm bar of `total` steps, drawn on a terminal once `after` seconds have passed, cleared at the end."""
    from tqdm.auto import tqdm

    started = time.monotonic()
    stop = threading.Event()
    with tqdm(total=total, desc=desc, unit=unit, delay=after, leave=False, disable=None) as bar:

        def tick() -> None:
            while not stop.wait(TICK):
                if time.monotonic() - started >= after:
                    bar.refresh()

        ticker = threading.Thread(target=tick, daemon=True)
        if not bar.disable:
            ticker.start()
        try:
            yield bar
        finally:
            stop.set()
            if ticker.is_alive():
                ticker.join()
