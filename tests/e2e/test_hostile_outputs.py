"""Hostile output paths, in every input layout the attack reads (our run folder, a folder of plain logits,
the reference code's experiment folders, its PyTorch port's): each case is exit 2, one `error:` line and
nothing changed anywhere under the case's folder (inputs, links, outputs). The attack runs in-process
(`lira_jax.attack.main`) on tiny inputs written without training, so a case takes milliseconds.

No output may resolve (symlinks, `..`, hard links) to a file the command reads or a run's own file, lie in
a run's checkpoints or a model's folder, name the same file as another output, or be anything but a new
path or a regular file. The last test writes the outputs of two invocations and tells them apart."""

import csv
import os
import stat
from pathlib import Path

import pytest
from hostile import FAST, LAYOUTS, input_files, make_input, metrics_of, model_folder, refused

from lira_jax import attack


def _link(root, name, target, hard=False):
    (os.link if hard else os.symlink)(root / target, root / name)
    return root / name


OUTPUT_CASES = {  # name -> (setup(root, folder) -> extra attack arguments, message)
    "plot through a symlink to an input": (
        lambda root, folder, read: ["--plot", _link(root, "x.png", read[0])],
        "refusing to overwrite",
    ),
    "json through a hard link to an input": (
        lambda root, folder, read: ["--json", _link(root, "hard.json", read[-1], hard=True)],
        "is a link to .*refusing to overwrite",
    ),
    "json through ..": (
        lambda root, folder, read: ["--json", root / "elsewhere" / ".." / read[0]],
        "refusing to overwrite",
    ),
    "json through a symlinked folder": (
        lambda root, folder, read: ["--json", _link(root, "linked", os.path.dirname(read[0])) / Path(read[0]).name],
        "refusing to overwrite",
    ),
    "distributions through a symlink to an input": (
        lambda root, folder, read: ["--distributions", _link(root, "d.png", read[1])],
        "refusing to overwrite",
    ),
    "default metrics.json is a symlink to an input": (
        lambda root, folder, read: _link(folder, "metrics.json", root / read[0]) and [],
        "--json .*metrics.json is .*refusing to overwrite",
    ),
    "default examples.csv is a hard link to an input": (
        lambda root, folder, read: _link(folder, "examples.csv", root / read[-1], hard=True) and [],
        "examples.csv .* is a link to .*refusing to overwrite",
    ),
    "default report.html is a folder": (
        lambda root, folder, read: (folder / "report.html").mkdir() or [],
        "report.html is a folder",
    ),
    "default metrics.csv is a pipe": (
        lambda root, folder, read: os.mkfifo(folder / "metrics.csv") or [],
        "metrics.csv is not a regular file",
    ),
    "json is a pipe": (
        lambda root, folder, read: os.mkfifo(root / "p") or ["--json", root / "p"],
        "not a regular file",
    ),
    "plot is a device": (
        lambda root, folder, read: _device(root / "null.png") or ["--plot", root / "null.png"],
        "not a regular file",
    ),
    "json is the input folder": (lambda root, folder, read: ["--json", folder], "is a folder"),
    "json in a missing folder": (
        lambda root, folder, read: ["--json", root / "missing" / "m.json"],
        "missing is not a directory",
    ),
    "plot and json the same file": (
        lambda root, folder, read: ["--json", root / "o.png", "--plot", root / "o.png"],
        "are the same file",
    ),
    "plot is the report beside json": (
        lambda root, folder, read: ["--json", root / "m.json", "--plot", root / "report.html"],
        "are the same file",
    ),
    "distributions is the plot": (
        lambda root, folder, read: ["--plot", root / "r.png", "--distributions", root / "r.png"],
        "are the same file",
    ),
    "distributions is the default plot via ..": (
        lambda root, folder, read: ["--distributions", folder / "nowhere" / ".." / "roc.png"],
        "are the same file",
    ),
    "two outputs hard-linked": (
        lambda root, folder, read: _outputs_linked(root) or ["--json", root / "out" / "m.json"],
        "are the same file",
    ),
    "plot suffix unknown": (lambda root, folder, read: ["--plot", root / "roc.jpeg2"], "must end in .png, .pdf, .svg"),
    "distributions without a suffix": (
        lambda root, folder, read: ["--distributions", root / "histograms"],
        "must end in .png, .pdf, .svg",
    ),
    "json in a protected folder (plain: under an input file)": (
        lambda root, folder, read: ["--json", root / (model_folder(read) or read[0]) / "m.json"],
        "lies in|is not a directory",
    ),
}


def _device(path):
    """A character device node like /dev/null (root only: elsewhere a pipe stands in)."""
    if os.geteuid() == 0:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    else:
        os.mkfifo(path)


def _outputs_linked(root):
    (root / "out").mkdir()
    (root / "out" / "metrics.csv").write_text("x")
    os.link(root / "out" / "metrics.csv", root / "out" / "examples.csv")


@pytest.fixture
def layout_input(tmp_path, request):
    folder, arguments = make_input(tmp_path, request.param)
    (tmp_path / "elsewhere").mkdir()
    return request.param, tmp_path, folder, arguments


@pytest.mark.parametrize("layout_input", LAYOUTS, indirect=True)
@pytest.mark.parametrize("case", list(OUTPUT_CASES))
def test_bad_output_paths_change_nothing(layout_input, capsys, case):
    layout, root, folder, arguments = layout_input
    setup, message = OUTPUT_CASES[case]
    extra = setup(root, folder, input_files(layout))
    refused(root, attack.main, [*arguments, *FAST, *extra], message, capsys)


INPUT_FILES = [(layout, name) for layout in LAYOUTS for name in input_files(layout)]


@pytest.mark.parametrize(("layout", "name"), INPUT_FILES)
@pytest.mark.parametrize("option", ["--json", "--plot"])
def test_no_output_replaces_an_input(tmp_path, capsys, layout, name, option):
    folder, arguments = make_input(tmp_path, layout)
    refused(tmp_path, attack.main, [*arguments, *FAST, option, tmp_path / name], "refusing to overwrite", capsys)


@pytest.mark.parametrize("layout", ["plain", "reference"])  # the writers are the same for every layout
def test_the_outputs_of_one_invocation_carry_its_id(tmp_path, capsys, layout):
    """Every output names the invocation that wrote it; a second invocation writes a new id, so files of two
    invocations left side by side (a kill between two writes) are told apart. The printed lines say what
    was read and the id; metrics.json lists every file read."""
    folder, arguments = make_input(tmp_path, layout)
    out = tmp_path / "out"
    out.mkdir()
    options = ["--json", out / "metrics.json", "--plot", out / "roc.png", "--distributions", out / "d.svg"]
    assert attack.main([str(part) for part in [*arguments, *FAST, *options]]) == 0
    printed = capsys.readouterr().out
    first = metrics_of(out / "metrics.json")["invocation"]
    assert f"invocation {first}" in printed and "read " in printed and "φ: " in printed
    assert {row["invocation"] for row in csv.DictReader((out / "metrics.csv").open())} == {first}
    assert {row["invocation"] for row in csv.DictReader((out / "examples.csv").open())} == {first}
    assert first in (out / "report.html").read_text() and first in (out / "d.svg").read_text()
    assert first.encode() in (out / "roc.png").read_bytes()  # PNG text chunk "Description"
    inputs = metrics_of(out / "metrics.json")["inputs"]
    assert inputs["files"] and all(os.path.isfile(file) for file in inputs["files"])
    if layout != "plain":
        return  # the second invocation once: it draws every figure again
    assert attack.main([str(part) for part in [*arguments, *FAST, "--json", out / "metrics.json"]]) == 0
    assert metrics_of(out / "metrics.json")["invocation"] != first
    assert {row["invocation"] for row in csv.DictReader((out / "examples.csv").open())} != {first}
