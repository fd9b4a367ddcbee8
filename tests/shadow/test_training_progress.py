"""progress.py: training progress as plain lines where stderr is not a terminal, a bar where it is."""

import io

from lira_jax.shadow import progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_file_gets_one_line_per_chunk_and_no_redraws(monkeypatch):
    log = io.StringIO()
    report = progress.TrainingProgress(8, 3, 2e6, quiet=False, stream=log)
    for epoch in (1, 2, 3):
        report.epoch("0:4", 4, epoch, 0.5, 1000.0 if epoch > 1 else None)
    report.chunk("0:4", 4, 12.5, 10.0, 1000.0)
    report.close()
    assert "\r" not in log.getvalue()
    assert log.getvalue().splitlines() == [
        "training: 4/8 models done (models 0:4: 12.5 s, 10.0 s of it training, 1,000 model-examples/s, 2 GFLOP/s)"
    ]


def test_a_long_chunk_logs_its_epochs_at_most_every_interval(monkeypatch):
    monkeypatch.setattr(progress, "EPOCH_LINE_SECONDS", 0.0)
    log = io.StringIO()
    report = progress.TrainingProgress(4, 3, 3.3e9, quiet=False, stream=log)
    for epoch in (1, 2, 3):
        report.epoch("0:4", 4, epoch, 0.25, 52_000.0 if epoch > 1 else None)
    assert log.getvalue().splitlines() == [  # the last epoch is the chunk's line
        "models 0:4 epoch 1/3, loss 0.250",
        "models 0:4 epoch 2/3, loss 0.250, 52,000 model-examples/s, 172 TFLOP/s",
    ]


def test_quiet_prints_nothing_and_a_terminal_gets_a_bar():
    silent = io.StringIO()
    report = progress.TrainingProgress(4, 2, 1e6, quiet=True, stream=silent)
    report.resumed("0:4", 1, 4)
    report.chunk("0:4", 4, 1.0, 1.0, None)
    assert silent.getvalue() == ""
    terminal = Terminal()
    report = progress.TrainingProgress(4, 2, 1e6, quiet=False, stream=terminal)
    report.epoch("0:4", 4, 1, 0.5, None)
    report.close()
    assert "\r" in terminal.getvalue() and "models 0:4 epoch 1/2" in terminal.getvalue()
