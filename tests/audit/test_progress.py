"""The attacks' progress bar: silent off a terminal, and live (redrawn while a long step runs) on one."""

import io
import time

from lira_jax.audit import progress
from lira_jax.audit.progress import progress_bar


def test_silent_off_a_terminal(capsys):
    with progress_bar(3, "attacks", "attack", after=0.0) as bar:
        bar.update(3)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_redrawn_while_a_long_step_runs(monkeypatch):
    import tqdm.auto

    terminal = _Terminal()
    original = tqdm.auto.tqdm
    monkeypatch.setattr(tqdm.auto, "tqdm", lambda *args, **kwargs: original(*args, file=terminal, **kwargs))
    monkeypatch.setattr(progress, "TICK", 0.05)
    with progress_bar(2, "attacks", "attack", after=0.1) as bar:
        bar.set_postfix_str("lira_online", refresh=False)
        time.sleep(0.4)  # one long step: no update, yet the bar shows what is at work
        assert "attacks" in terminal.getvalue() and "lira_online" in terminal.getvalue()
        bar.update(2)
