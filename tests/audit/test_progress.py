"""The attacks' progress: plain lines off a terminal, a bar on one (redrawn while a long step runs), or nothing."""

import io

from lira_jax.audit.report.progress import attack_progress


def test_one_plain_line_per_family_off_a_terminal():
    log = io.StringIO()
    with attack_progress(3, stream=log) as progress:
        for names in (["lira_online", "lira_offline"], ["loss"]):
            progress.start(names)
            progress.finish(names)
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and len(lines) == 2
    assert lines[0].startswith("attacks: lira_online, lira_offline scored in ") and lines[0].endswith(" s (2 of 3)")
    assert lines[1].startswith("attacks: loss scored in ") and lines[1].endswith(" s (3 of 3)")


def test_quiet_says_nothing(capsys):
    with attack_progress(1, quiet=True) as progress:
        progress.start(["loss"])
        progress.finish(["loss"])
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_bar_on_a_terminal_shows_the_family_at_work():
    terminal = _Terminal()
    with attack_progress(2, stream=terminal, after=0.0) as progress:
        progress.start(["lira_online"])
        progress.bar.refresh()  # what the ticker does every second while the family runs
        assert "attacks" in terminal.getvalue() and "lira_online" in terminal.getvalue()
        progress.finish(["lira_online"])
    assert "\r" in terminal.getvalue()  # redrawn in place
