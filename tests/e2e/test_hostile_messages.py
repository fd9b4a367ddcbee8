"""Unclear or late messages (issue 25 §5): an error comes alone (warnings raised before it are held and
dropped), an epoch folder is found as the user spelled it (epochs/02), the --top table keeps its columns
apart however large the scores, a report's per-model accuracies must have one value per target or per
model, and a run folder that cannot be created says why (not "0 bytes free"). In-process, tiny inputs."""

import re
import shutil
import sys
import warnings

import numpy as np
import pytest
from hostile import FAST, metrics_of, refused, skip_drawing, tiny_arrays, write_trained

import lira_jax
from lira_jax import attack, train
from lira_jax.errors import UserError, exits_cleanly

RAISED = {
    "a UserError": (UserError("the input is bad"), 2, "error: the input is bad"),
    "an OSError": (OSError(28, "No space left on device"), 2, "error: No space left on device"),
    "a MemoryError": (MemoryError(), 2, "error: out of memory"),
    "an interrupt": (KeyboardInterrupt(), 130, "interrupted: finished models are saved"),
}


@pytest.fixture
def warnings_to_stderr(monkeypatch):
    """Warnings printed to stderr as a command line prints them (pytest would otherwise collect them)."""
    monkeypatch.setattr(
        warnings, "showwarning", lambda message, *rest, **kw: print(f"warning: {message}", file=sys.stderr)
    )


@pytest.mark.parametrize("case", list(RAISED))
def test_an_error_comes_alone_without_the_warnings_before_it(warnings_to_stderr, capsys, case):
    error, status, line = RAISED[case]

    @exits_cleanly
    def main():
        warnings.warn("overflow encountered in cast", RuntimeWarning, stacklevel=1)
        raise error

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert main() == status
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(line), lines


def test_the_warnings_of_a_command_that_succeeds_are_shown_after_it(warnings_to_stderr, capsys):
    @exits_cleanly
    def main():
        warnings.warn("a library's remark", UserWarning, stacklevel=1)
        print("done", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        assert main() == 0
    assert capsys.readouterr().err.splitlines() == ["done", "warning: a library's remark"]


def test_an_epoch_folder_with_a_leading_zero_is_that_epoch(tmp_path, capsys, monkeypatch):
    run = write_trained(tmp_path / "run")
    (run / "epochs" / "1").rename(run / "epochs" / "01")
    skip_drawing(monkeypatch)
    assert attack.main([str(run), *FAST, "--epoch", "1"]) == 0
    assert metrics_of(run / "epochs" / "01" / "metrics.json")["epoch"] == 1
    assert not (run / "epochs" / "1").exists()


def test_two_spellings_of_one_epoch_are_refused(tmp_path, capsys):
    run = write_trained(tmp_path / "run")
    shutil.copytree(run / "epochs" / "1", run / "epochs" / "001")
    refused(tmp_path, attack.main, [run, *FAST, "--epoch", "1"], r"epochs/001 and .*epochs/1 both name epoch 1", capsys)


def test_an_epoch_never_saved_lists_the_saved_ones_as_numbers(tmp_path, capsys):
    run = write_trained(tmp_path / "run")
    (run / "epochs" / "1").rename(run / "epochs" / "01")
    refused(tmp_path, attack.main, [run, *FAST, "--epoch", "2"], r"epoch 2 was not saved .*saved epochs: 1$", capsys)


@pytest.mark.parametrize("scale", [1e4, 1e12, 1e30, -1e30])
def test_top_columns_stay_apart_however_large_the_scores(tmp_path, capsys, monkeypatch, scale):
    logits, keep, labels = tiny_arrays()
    folder = tmp_path / "plain"
    folder.mkdir()
    logits[:, :, :, 0] = logits[:, :, :, 0] * scale
    for name, array in (("logits", logits.astype(np.float32)), ("keep", keep), ("labels", labels)):
        np.save(folder / f"{name}.npy", array)
    skip_drawing(monkeypatch)
    assert attack.main([str(folder), "--attacks", "global_threshold", "--top", "6"]) == 0
    printed = capsys.readouterr().out.splitlines()
    start = next(index for index, line in enumerate(printed) if line.startswith("most exposed examples"))
    rows = printed[start + 2 : start + 8]
    assert len(rows) == 6
    for row in rows:
        cells = row.split()
        assert len(cells) == 6, row  # example, label, members, flagged, mean in, mean out
        assert all(re.fullmatch(r"-?[\d.]+(e[+-]\d+)?%?|n/m", cell) for cell in cells), row


@pytest.fixture(scope="module")
def audit():
    logits, keep, labels = tiny_arrays()
    return lira_jax.audit_logits(logits, keep, labels, attacks=["global_threshold"])


@pytest.mark.parametrize("length", [0, 1, 5, 7, 36])
def test_a_report_with_accuracies_of_the_wrong_length_is_refused(audit, tmp_path, length):
    accuracy = {"train": [0.9] * length, "test": [0.5] * length}
    with pytest.raises(UserError, match=rf"accuracy lists {length} models; give one value per target or per model"):
        audit.to_html(tmp_path / "report.html", accuracy=accuracy)
    assert not list(tmp_path.iterdir())


def test_a_report_with_one_accuracy_per_model_is_written(audit, tmp_path):
    audit.to_html(tmp_path / "report.html", accuracy={"train": [0.9] * 6, "test": [0.5] * 6})
    assert "mean train accuracy 0.9000" in (tmp_path / "report.html").read_text()


@pytest.mark.parametrize("out", ["/proc/self/run", "/sys/run"])
def test_a_run_folder_that_cannot_be_created_says_why(tmp_path, capsys, out):
    from conftest import tiny_settings

    message = rf"cannot write the run folder {out}: no file can be created in /(proc/self|sys)"
    refused(tmp_path, train.main, ["--out", out, *tiny_settings(), "--quiet"], message, capsys)
