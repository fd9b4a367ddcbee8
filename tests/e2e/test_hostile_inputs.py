"""Hostile inputs on the command line, in every layout the attack reads: a damaged, stray, stale or
disguised file is exit 2 with one `error:` line naming it and nothing changed (a file that is unusual but
right: test_unusual_inputs.py). In-process, on tiny inputs written without training (tests/hostile.py)."""

import json
import os
import shutil

import numpy as np
import pytest
from hostile import FAST, M, N, experiment, make_input, only_scores, refused, resave

from lira_jax import attack


def _npz(path):
    array = np.load(path)
    with open(path, "wb") as handle:
        np.savez(handle, array)


def _huge_header(path):
    array = np.load(path)
    with open(path, "wb") as handle:
        shape = (10**7,) * array.ndim
        np.lib.format.write_array_header_1_0(handle, {"descr": array.dtype.str, "fortran_order": False, "shape": shape})
        handle.write(b"\0" * 64)


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])


def _probabilities(logits):
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _log_of_zero(logits):
    logs = np.log(np.maximum(_probabilities(logits.astype(np.float64)), 1e-300))
    logs[2, 5, 0, 1] = -np.inf
    return logs


def _at(value, index=(1, 3, 0, 0)):
    def change(array):
        array = array.astype(np.float64)
        array[index] = value
        return array

    return change


def _replace_with_folder(path):
    path.unlink()
    path.mkdir()


PLAIN = {  # name -> (change(folder), message)
    "logits.npy is an npz": (lambda f: _npz(f / "logits.npy"), r"logits\.npy is an \.npz archive"),
    "keep.npy is an npz": (lambda f: _npz(f / "keep.npy"), r"keep\.npy is an \.npz archive"),
    "labels.npy is an npz": (lambda f: _npz(f / "labels.npy"), r"labels\.npy is an \.npz archive"),
    "logits header huge": (lambda f: _huge_header(f / "logits.npy"), r"logits\.npy declares float32.* in its header"),
    "keep header huge": (lambda f: _huge_header(f / "keep.npy"), r"keep\.npy declares bool.* but holds"),
    "labels header huge": (lambda f: _huge_header(f / "labels.npy"), r"labels\.npy declares int64.* but holds"),
    "logits truncated": (lambda f: _truncate(f / "logits.npy"), r"logits\.npy declares .* truncated"),
    "logits empty": (lambda f: (f / "logits.npy").write_bytes(b""), r"logits\.npy is not a \.npy file"),
    "logits is text": (lambda f: (f / "logits.npy").write_text("1,2,3"), r"logits\.npy is not a \.npy file"),
    "labels pickled": (
        lambda f: np.save(f / "labels.npy", np.array([{}] * N), allow_pickle=True),
        "holds Python objects",
    ),
    "logits are probabilities": (lambda f: resave(f / "logits.npy", _probabilities), "look like probabilities"),
    "log of zero": (lambda f: resave(f / "logits.npy", _log_of_zero), r"-inf at model 2, example 5\): a log of 0\?"),
    "logits NaN": (lambda f: resave(f / "logits.npy", _at(np.nan)), r"nan at model 1, example 3"),
    "logits inf": (lambda f: resave(f / "logits.npy", _at(np.inf)), r"inf at model 1, example 3"),
    "logits examples first": (
        lambda f: resave(f / "logits.npy", lambda a: a.transpose(1, 0, 2, 3)),
        r"examples first\? save it with the models first",
    ),
    "keep transposed": (lambda f: resave(f / "keep.npy", lambda a: a.T), r"is keep\.npy \[N, M\]\?"),
    "logits integers": (lambda f: resave(f / "logits.npy", lambda a: a.astype(int)), "float16, float32 or float64"),
    "logits 5-D": (lambda f: resave(f / "logits.npy", lambda a: a[..., None]), r"\[M, N, C\] or \[M, N, V, C\]"),
    "logits one class": (lambda f: resave(f / "logits.npy", lambda a: a[..., :1]), r"C >= 2"),
    "labels out of range": (lambda f: resave(f / "labels.npy", lambda a: a + 7), r"labels must lie in \[0, 3\)"),
    "labels floats": (lambda f: resave(f / "labels.npy", lambda a: a.astype(float)), r"labels\.npy must be integers"),
    "keep holds 2": (lambda f: resave(f / "keep.npy", lambda a: a.astype(int) * 2), "bool or 0/1 integers"),
    "keep floats": (lambda f: resave(f / "keep.npy", lambda a: a.astype(float)), "bool or 0/1 integers"),
    "keep 1-D": (lambda f: resave(f / "keep.npy", lambda a: a[0]), "bool or 0/1 integers"),
    "one model": (
        lambda f: [resave(f / f"{name}.npy", lambda a: a[:1]) for name in ("logits", "keep")],
        "at least 2 finished models",
    ),
    "models.json: one done": (
        lambda f: (f / "models.json").write_text(json.dumps({"models": [{"done": i == 0} for i in range(M)]})),
        "at least 2 finished models",
    ),
    "models.json broken": (lambda f: (f / "models.json").write_text("{"), "is not a JSON object"),
    "keep.npy missing": (lambda f: (f / "keep.npy").unlink(), r"keep\.npy is missing"),
    "labels.npy a folder": (lambda f: _replace_with_folder(f / "labels.npy"), r"labels\.npy is not a regular file"),
    "logits.npy a pipe": (
        lambda f: ((f / "logits.npy").unlink(), os.mkfifo(f / "logits.npy")),
        r"logits\.npy is not a regular file",
    ),
    "scores.npy float64 without logits": (
        lambda f: (np.save(f / "scores.npy", np.zeros((M, N, 2))), (f / "logits.npy").unlink()),
        r"scores\.npy must be float32",
    ),
}

PLAIN_OPTIONS = {
    "--labels for a run folder": (["--labels", "x.npy"], "--labels is for --format lira-reference"),
    "--epoch of a plain folder": (["--epoch", "0"], "epoch 0 was not saved"),
    "--targets beyond the models": (["--targets", "0:99"], "--targets '0:99' must be A:B"),
    "--format unknown": (["--format", "csv"], "invalid choice"),
    "--mask round:D beyond float64": (["--mask", "round:99999999999999999999"], "at most 17"),
    "--examples without --distributions": (["--examples", "3"], "--examples chooses the examples of --distributions"),
    "--examples with an empty item": (["--distributions", "d.png", "--examples", "1,,2"], "--examples must be I,J"),
}


def _broken(root, layout, change):
    folder, arguments = make_input(root, layout)
    change(folder)
    return folder, arguments


@pytest.mark.parametrize("case", list(PLAIN))
def test_damaged_plain_folder(tmp_path, capsys, case):
    change, message = PLAIN[case]
    _, arguments = _broken(tmp_path, "plain", change)
    refused(tmp_path, attack.main, [*arguments, *FAST], message, capsys)


@pytest.mark.parametrize("case", list(PLAIN_OPTIONS))
def test_bad_options_on_a_plain_folder(tmp_path, capsys, case):
    extra, message = PLAIN_OPTIONS[case]
    _, arguments = make_input(tmp_path, "plain")
    refused(tmp_path, attack.main, [*arguments, *FAST, *extra], message, capsys)


def _integer_scores(root):
    for model in range(M):
        only_scores(experiment(root, model))
        resave(experiment(root, model) / "scores" / "0000000020.npy", lambda a: a.astype(np.int64))


REFERENCE = {
    "an experiment without keep.npy": (
        lambda r: (experiment(r) / "keep.npy").unlink(),
        rf"no keep\.npy in experiment-2_{M}",
    ),
    "an experiment without epoch files": (
        lambda r: [shutil.rmtree(experiment(r) / kind) for kind in ("logits", "scores")],
        rf"neither logits/E\.npy nor scores/E\.npy in experiment-2_{M}",
    ),
    "an empty experiment folder": (
        lambda r: (r / f"experiment-9_{M}").mkdir(),
        rf"no keep\.npy in experiment-9_{M}",
    ),
    "keep too short": (lambda r: resave(experiment(r) / "keep.npy", lambda a: a[:5]), r"keep\.npy must be \[N'\]"),
    "keep holds 2": (
        lambda r: resave(experiment(r) / "keep.npy", lambda a: a.astype(int) * 2),
        "bool or 0/1 integers",
    ),
    "logits of one model in another shape": (
        lambda r: resave(experiment(r) / "logits" / "0000000020.npy", lambda a: a[:-1]),
        "differ in shape",
    ),
    "an epoch file is an npz": (lambda r: _npz(experiment(r) / "logits" / "0000000020.npy"), "is an .npz archive"),
    "an epoch file declares a huge shape": (
        lambda r: _huge_header(experiment(r) / "logits" / "0000000020.npy"),
        "declares float32.* in its header",
    ),
    "scores are integers": (_integer_scores, "must be floating point"),
    "y_train.npy missing": (lambda r: (r / "y_train.npy").unlink(), "holds logits but no labels"),
    "y_train.npy floats": (lambda r: resave(r / "y_train.npy", lambda a: a.astype(float)), "labels must be integers"),
    "y_train.npy short": (lambda r: resave(r / "y_train.npy", lambda a: a[:3]), r"N' >= 40"),
    "y_train.npy pickled": (
        lambda r: np.save(r / "y_train.npy", np.array([None] * N), allow_pickle=True),
        "holds Python objects",
    ),
    "labels out of range": (lambda r: resave(r / "y_train.npy", lambda a: a + 5), r"labels must lie in \[0, 3\)"),
    "one experiment": (
        lambda r: [shutil.rmtree(experiment(r, model)) for model in range(1, M)],
        "at least 2 models are needed",
    ),
    "logits are probabilities": (
        lambda r: [resave(experiment(r, m) / "logits" / "0000000020.npy", _probabilities) for m in range(M)],
        "look like probabilities",
    ),
    "logits NaN": (
        lambda r: resave(experiment(r) / "logits" / "0000000020.npy", _at(np.nan, (3, 0, 0, 0))),
        "nan at model 2, example 3",
    ),
    "not a reference folder": (
        lambda r: [shutil.rmtree(experiment(r, model)) for model in range(M)],
        "neither a LiRA reference folder",
    ),
}


@pytest.mark.parametrize("case", list(REFERENCE))
def test_damaged_reference_folder(tmp_path, capsys, case):
    change, message = REFERENCE[case]
    _, arguments = _broken(tmp_path, "reference", change)
    refused(tmp_path, attack.main, [*arguments, *FAST], message, capsys)


def _without_labels_option(arguments):
    return arguments[: arguments.index("--labels")]


def _unlink_arrays(folder):
    for kind in ("logits", "scores"):
        (folder / f"{kind}.npy").unlink()


PORT = {  # name -> (change(root, arguments) -> the arguments to pass, message)
    "a numbered folder without keep.npy": (
        lambda r, a: (r / "port" / "3" / "keep.npy").unlink() or a,
        r"no keep\.npy in 3",
    ),
    "a numbered folder without arrays": (
        lambda r, a: _unlink_arrays(r / "port" / "3") or a,
        "neither logits.npy nor scores.npy in 3",
    ),
    "no --labels": (lambda r, a: _without_labels_option(a), "holds logits but no labels"),
    "--labels missing": (lambda r, a: [*_without_labels_option(a), "--labels", r / "nope.npy"], "is not a file"),
    "--labels a folder": (lambda r, a: [*_without_labels_option(a), "--labels", r], "is not a file"),
    "--labels an npz": (lambda r, a: _npz(r / "labels.npy") or a, "is an .npz archive"),
    "--labels floats": (
        lambda r, a: resave(r / "labels.npy", lambda x: x.astype(float)) or a,
        "labels must be integers",
    ),
    "--labels short": (lambda r, a: resave(r / "labels.npy", lambda x: x[:4]) or a, r"N' >= 40"),
    "logits 4-D": (
        lambda r, a: resave(r / "port" / "1" / "logits.npy", lambda x: x[None]) or a,
        "must be floating point",
    ),
    "keep holds 2": (
        lambda r, a: resave(r / "port" / "1" / "keep.npy", lambda x: x.astype(int) * 2) or a,
        "bool or 0/1 integers",
    ),
    "--epoch": (lambda r, a: [*a, "--epoch", "3"], "--epoch reads our run folders"),
}


@pytest.mark.parametrize("case", list(PORT))
def test_damaged_port_folder(tmp_path, capsys, case):
    change, message = PORT[case]
    _, arguments = make_input(tmp_path, "port")
    arguments = change(tmp_path, arguments)
    refused(tmp_path, attack.main, [*arguments, *FAST], message, capsys)


def _tamper_one(run):
    resave(run / "scores.npy", lambda a: a + (np.arange(a.size).reshape(a.shape) == 7))


RUN = {
    "scores.npy changed at one value": (_tamper_one, r"scores\.npy is not φ of logits\.npy \(1 of"),
    "scores.npy of another order": (
        lambda r: resave(r / "scores.npy", lambda a: a[::-1].copy()),
        r"scores\.npy is not φ of logits\.npy",
    ),
    "keep.npy an npz": (lambda r: _npz(r / "keep.npy"), "is an .npz archive"),
    "logits header huge": (lambda r: _huge_header(r / "logits.npy"), "declares float16"),
    "logits.npy a folder": (lambda r: _replace_with_folder(r / "logits.npy"), r"logits\.npy is not a regular file"),
    "config.toml garbage": (lambda r: (r / "config.toml").write_text("[train"), "not valid TOML"),
}


@pytest.mark.parametrize("case", list(RUN))
def test_damaged_trained_run(tmp_path, capsys, case):
    change, message = RUN[case]
    _, arguments = _broken(tmp_path, "run", change)
    refused(tmp_path, attack.main, [*arguments, *FAST], message, capsys)


def test_a_stale_epoch_snapshot_is_refused(tmp_path, capsys):
    folder, arguments = _broken(tmp_path, "run", lambda r: resave(r / "epochs" / "1" / "scores.npy", np.zeros_like))
    refused(tmp_path, attack.main, [*arguments, *FAST, "--epoch", "1"], r"epochs/1: scores\.npy is not φ", capsys)
