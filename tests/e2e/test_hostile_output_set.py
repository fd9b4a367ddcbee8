"""The output set all or nothing (issue 25 §4): every output of `attack` (metrics.json, roc.png, metrics.csv,
examples.csv, report.html, --distributions) and of `study` is shown writable before anything is scored, then
written to temporaries and moved into place together. A destination no file can be created in (as root:
/proc and /sys, where permissions do not stop root) is refused before scoring; a fault while the set is
being written (a full disk, an interrupt) leaves the old set byte-identical and no temporary behind.

Each case is in-process on tiny inputs written without training; the old set is five files of known bytes."""

import errno
import re
from dataclasses import replace
from pathlib import Path

import pytest
from hostile import FAST, fails_cleanly, make_input, refused, skip_drawing, snapshot

from lira_jax import attack, study
from lira_jax.audit.report import plots
from lira_jax.audit.report.result import Audit
from lira_jax.errors import UserError

OLD_SET = ("metrics.json", "roc.png", "metrics.csv", "examples.csv", "report.html")

UNWRITABLE = {  # name -> (extra attack arguments, message)
    "plot under /proc, json writable": (["--plot", "/proc/self/roc.png"], r"--plot /proc/self/roc.png: no file can"),
    "json under /proc": (["--json", "/proc/self/m.json"], r"--json /proc/self/m.json: no file can be created"),
    "json under /proc, plot writable": (["--json", "/proc/m.json", "--plot", "{root}/r.png"], r"/proc/m.json"),
    "plot under /sys": (["--plot", "/sys/roc.png"], r"cannot write --plot /sys/roc.png: .*Permission denied"),
    "json under /sys/kernel": (["--json", "/sys/kernel/m.json"], r"/sys/kernel \(Permission denied\)"),
    "distributions under /proc": (["--distributions", "/proc/self/d.png"], r"--distributions /proc/self/d.png"),
    "distributions under /sys, the rest writable": (
        ["--json", "{root}/o/m.json", "--plot", "{root}/o/r.png", "--distributions", "/sys/d.svg"],
        r"--distributions /sys/d.svg",
    ),
    "json beside the report under /proc/self/fd": (["--json", "/proc/self/fd/m.json"], r"/proc/self/fd"),
    "json name too long for its temporary": (
        ["--json", "{root}/o/" + "m" * 240 + ".json"],
        r"cannot write --json .*: no file can be created in .*/o \(File name too long\)",
    ),
    "plot name too long for its temporary": (
        ["--plot", "{root}/o/" + "r" * 245 + ".png"],
        r"cannot write --plot .*\(File name too long\)",
    ),
}


def _old_set(folder: Path) -> None:
    for name in OLD_SET:
        (folder / name).write_bytes(f"the old {name}\n".encode())


def _failed_while_writing(root: Path, run, argv, message, capsys) -> None:
    """After scoring (its progress lines on stderr are allowed): exit 2, the last line the only `error:`
    line, no traceback, and every file under root as before (`hostile.snapshot`: bytes, inodes, mtimes)."""
    before = snapshot(root)
    assert run([str(part) for part in argv]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert [line for line in lines if line.startswith("error:")] == [lines[-1]], err
    assert re.search(message, lines[-1]) and "Traceback" not in err
    assert snapshot(root) == before


@pytest.mark.parametrize("layout", ["run", "plain"])
@pytest.mark.parametrize("case", list(UNWRITABLE))
def test_an_unwritable_output_is_refused_before_scoring(tmp_path, capsys, monkeypatch, layout, case):
    folder, arguments = make_input(tmp_path, layout)
    _old_set(folder)
    (tmp_path / "o").mkdir()
    extra, message = UNWRITABLE[case]
    scored = []
    monkeypatch.setattr("lira_jax.audit.evaluate.score_checked", lambda *a, **k: scored.append(1))
    extra = [part.format(root=tmp_path) for part in extra]
    refused(tmp_path, attack.main, [*arguments, *FAST, *extra], message, capsys)
    assert not scored  # refused before any attack ran


FAULTS = {  # which writer fails, after writing its own file: the set is half written at that moment
    "roc.png": (Audit, "plot_roc"),
    "examples.csv": (Audit, "write_examples_csv"),
    "metrics.csv": (Audit, "write_metrics_csv"),
    "report.html": (Audit, "to_html"),
    "metrics.json (the last)": (Audit, "write_metrics_json"),
    "distributions": (plots, "plot_score_distributions"),
}


def _failing_after(owner, name, error):
    original = getattr(owner, name)

    def write_then_fail(*args, **kwargs):
        original(*args, **kwargs)
        raise error

    return write_then_fail


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_full_disk_while_writing_leaves_the_old_set(tmp_path, capsys, monkeypatch, fault):
    folder, arguments = make_input(tmp_path, "plain")
    _old_set(folder)
    skip_drawing(monkeypatch)
    owner, name = FAULTS[fault]
    full = OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(owner, name, _failing_after(owner, name, full))
    argv = [*arguments, *FAST, "--distributions", folder / "d.png"]
    _failed_while_writing(tmp_path, attack.main, argv, "No space left on device", capsys)
    assert not [path for path in folder.iterdir() if ".partial-" in path.name or "probe" in path.name]


def test_an_interrupt_while_writing_leaves_the_old_set(tmp_path, capsys, monkeypatch):
    folder, arguments = make_input(tmp_path, "plain")
    _old_set(folder)
    skip_drawing(monkeypatch)
    monkeypatch.setattr(Audit, "to_html", _failing_after(Audit, "to_html", KeyboardInterrupt()))
    before = snapshot(tmp_path)
    assert attack.main([str(part) for part in [*arguments, *FAST]]) == 130
    assert "Traceback" not in capsys.readouterr().err
    assert snapshot(tmp_path) == before


def test_a_written_set_replaces_every_old_file_and_leaves_no_temporary(tmp_path, capsys, monkeypatch):
    folder, arguments = make_input(tmp_path, "plain")
    _old_set(folder)
    skip_drawing(monkeypatch)
    assert attack.main([str(part) for part in [*arguments, *FAST]]) == 0
    assert all((folder / name).read_bytes() != f"the old {name}\n".encode() for name in OLD_SET)
    assert sorted(path.name for path in folder.iterdir() if path.name.startswith(".")) == []


STUDY_OUTS = ["/proc/self/study", "/proc/self/fd/x/y", "/sys/study-out", "/sys/kernel/deeper/still"]


@pytest.mark.parametrize("out", STUDY_OUTS)
def test_a_study_output_folder_that_cannot_be_written_is_refused_first(tmp_path, capsys, out):
    folder, _ = make_input(tmp_path, "run")
    refused(tmp_path, study.main, ["violins", folder, "--out", out], "no file can be created in", capsys)


@pytest.mark.parametrize("existing", [True, False])
def test_a_study_fault_while_writing_leaves_no_partial_set(tmp_path, capsys, monkeypatch, existing):
    """An existing --out keeps its old table; a new one is not left behind empty."""
    folder, _ = make_input(tmp_path, "run")
    out = tmp_path / "study"
    if existing:
        out.mkdir()
        (out / "violins.md").write_text("old table\n")
    from lira_jax.studies import runner

    no_figure = replace(runner.STUDIES["violins"], draw=lambda drawing, path: runner.write_atomically(path, b""))
    monkeypatch.setitem(runner.STUDIES, "violins", no_figure)
    calls = []

    def write_then_fail(path, content):
        calls.append(path)
        if len(calls) == 3:  # the .json, after the figure and the .md were staged
            raise UserError(f"cannot write {path}: No space left on device")
        return original(path, content)

    original = runner.write_atomically
    monkeypatch.setattr(runner, "write_atomically", write_then_fail)
    _failed_while_writing(tmp_path, study.main, ["violins", folder, "--out", out], "No space left", capsys)
    if existing:
        assert sorted(path.name for path in out.iterdir()) == ["violins.md"]
    else:
        assert not out.exists()


@pytest.mark.parametrize("writer", ["write_metrics_json", "write_metrics_csv", "write_examples_csv", "plot_roc"])
def test_the_api_refuses_an_unwritable_path_with_one_error(tmp_path, writer):
    audit = Audit({"num_models": 2, "attacks": {}, "invocation": "x"}, {}, {})
    with pytest.raises(UserError, match="no file can be created in /proc/self"):
        getattr(audit, writer)(f"/proc/self/out.{'png' if writer == 'plot_roc' else 'json'}")


def test_fails_cleanly_on_a_read_only_destination_even_for_a_new_folder(tmp_path, capsys):
    """--json in a folder still to be made under /proc: its nearest existing ancestor is probed."""
    folder, arguments = make_input(tmp_path, "plain")
    fails_cleanly(
        attack.main, [*arguments, *FAST, "--json", "/proc/self/new/m.json"], r"not a directory|no file", capsys
    )
