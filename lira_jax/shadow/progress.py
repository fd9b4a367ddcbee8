"""Training progress that reads on a terminal and in a log file.

On a terminal (stderr a tty): a tqdm bar of model-epochs, its postfix the chunk at work, the epoch, the
loss and the speed. Elsewhere (`2>&1 | tee log`, a job scheduler's file): plain lines and no redraws, one
per finished chunk (models done, seconds, model-examples/s and the FLOP rate) and, while a long chunk
trains, one per epoch at most every EPOCH_LINE_SECONDS, so a log shows a live run. `quiet` silences
both; the lines that say what was chosen are the trainer's, printed in every mode.
"""

import sys
import time
from typing import IO

from tqdm.auto import tqdm

EPOCH_LINE_SECONDS = 60.0


def speed(model_examples_per_s: float, flops_per_example: float) -> str:
    """ "52,158 model-examples/s, 174 TFLOP/s": the FLOP rate from the model's FLOPs (flops.py)."""
    flop_rate = model_examples_per_s * flops_per_example
    prefix, scale = next(((p, s) for p, s in (("P", 1e15), ("T", 1e12), ("G", 1e9)) if flop_rate >= s), ("M", 1e6))
    return f"{model_examples_per_s:,.0f} model-examples/s, {flop_rate / scale:.3g} {prefix}FLOP/s"


class TrainingProgress:
    """Progress of training `total_models` models of `epochs` epochs each, on a terminal or in a file."""

    def __init__(
        self, total_models: int, epochs: int, flops_per_example: float, quiet: bool, stream: IO[str] | None = None
    ):
        self.stream = stream or sys.stderr
        self.total, self.epochs, self.flops_per_example = total_models, epochs, flops_per_example
        self.quiet = quiet
        self.done = 0
        self.started = time.perf_counter()
        self.last_line = self.started
        self.bar = None
        if not quiet and self.stream.isatty():
            self.bar = tqdm(
                total=total_models * epochs,  # model-epochs, so that the bar moves every epoch
                file=self.stream,
                dynamic_ncols=True,
                bar_format="{desc} {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]{postfix}",
                desc=f"training: 0/{total_models} models done",
            )

    def write(self, line: str) -> None:
        """A line that stays (above the bar on a terminal)."""
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def resumed(self, models: str, first_epoch: int, count: int) -> None:
        """`count` models (`models`, as ranges) resumed from a checkpoint after epoch `first_epoch`."""
        self.write(f"models {models}: resumed after epoch {first_epoch}")
        if self.bar is not None:
            self.bar.update(count * first_epoch)

    def epoch(self, models: str, count: int, epoch: int, loss: float, rate: float | None) -> None:
        """Epoch `epoch` (1-based) of `count` models finished with mean loss `loss`, at `rate`
        model-examples/s (None for an epoch that compiled)."""
        pace = f", {speed(rate, self.flops_per_example)}" if rate else ""
        status = f"models {models} epoch {epoch}/{self.epochs}, loss {loss:.3f}{pace}"
        if self.bar is not None:
            self.bar.set_postfix_str(status)
            self.bar.update(count)
        elif time.perf_counter() - self.last_line >= EPOCH_LINE_SECONDS and epoch < self.epochs:
            self.write(status)
            self.last_line = time.perf_counter()

    def chunk(self, models: str, count: int, seconds: float, train_seconds: float, rate: float | None) -> None:
        """A chunk of `count` models trained and queried in `seconds` (training `train_seconds` of it), at
        `rate` model-examples/s over its epochs after the first (None where it had only one)."""
        self.done += count
        if self.bar is not None:
            self.bar.set_description_str(f"training: {self.done}/{self.total} models done")
            return
        pace = f", {speed(rate, self.flops_per_example)}" if rate else ""
        self.write(
            f"training: {self.done}/{self.total} models done (models {models}: {seconds:.1f} s, "
            f"{train_seconds:.1f} s of it training{pace})"
        )
        self.last_line = time.perf_counter()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
