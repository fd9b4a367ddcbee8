"""The Python API as strict as the command line: every argument of `lira_jax.audit_logits` and of the
`Audit` methods that the command line would refuse is one `UserError` naming the argument (never a bare
TypeError, ValueError or IndexError, never a silent coercion, never a warning first), and nothing is
written; extreme but finite logits are inputs, scored without NaN and without a warning."""

import os
import warnings

import numpy as np
import pytest

import lira_jax
from lira_jax.audit.attacks.rmia import rmia
from lira_jax.audit.registry import ATTACKS as ATTACKS_KNOWN
from lira_jax.errors import UserError

M, N, V, C = 6, 40, 2, 3
ATTACKS = ["lira_online_fixed_var", "rmia_online", "global_threshold"]


def _arrays(seed=0):
    rng = np.random.default_rng(seed)
    keep = np.argsort(rng.random((M, N)), axis=0) < M // 2
    labels = rng.integers(0, C, N)
    logits = rng.normal(size=(M, N, V, C))
    logits[:, np.arange(N), :, labels] += (1.0 + 2.0 * keep).T[:, :, None]
    return logits, keep, labels


LOGITS, KEEP, LABELS = _arrays()


def _probabilities(logits):
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _with(array, index, value):
    array = array.astype(np.float64)
    array[index] = value
    return array


def _log_of_zero():
    logs = np.log(np.maximum(_probabilities(LOGITS), 1e-300))
    logs[1, 4, 0, 2] = -np.inf
    return logs


# name -> (keyword arguments replacing the good ones, message)
BAD_CALLS = {
    "attacks a number": ({"attacks": 5}, "attacks must be a comma-separated string or a list of names"),
    "attacks a list of numbers": ({"attacks": [1, 2]}, "attacks must be a comma-separated string"),
    "attacks empty": ({"attacks": ""}, "attacks takes names from"),
    "attacks unknown in a string": ({"attacks": "lira_online,vibes"}, "unknown 'vibes'"),
    "attacks repeated": ({"attacks": ["loss", "loss"]}, "names each only once"),
    "attacks needing a second run": ({"attacks": ["ml_leaks_adv2"]}, r"ml_leaks_adv2 .*transfer=TransferShadow"),
    "targets a float": ({"targets": 1.0}, "targets must be an integer or a list of integers"),
    "targets a bool": ({"targets": True}, "targets must be an integer or a list of integers"),
    "targets None": ({"targets": None}, "targets must be an integer or a list of integers"),
    "targets a dict": ({"targets": {0: 1}}, "targets must be an integer or a list of integers"),
    "targets floats": ({"targets": [0.0, 1.0]}, "each of targets must be an integer, got 0.0"),
    "targets bools": ({"targets": [True]}, "each of targets must be an integer, got True"),
    "targets beyond the models": ({"targets": [M]}, r"targets must be distinct model indices in \[0, 6\)"),
    "targets negative": ({"targets": -1}, r"distinct model indices in \[0, 6\), got \[-1\]"),
    "targets repeated": ({"targets": [2, 2]}, "distinct model indices"),
    "targets empty": ({"targets": []}, "distinct model indices"),
    "targets a matrix": ({"targets": np.array([[0, 1]])}, r"an array of shape \[1, 2\]"),
    "targets a range beyond": ({"targets": "0:99"}, "targets '0:99' must be A:B"),
    "targets text": ({"targets": "first"}, "targets must be last, all, I,J,... or A:B"),
    "delta 0": ({"delta": 0}, r"delta must be a finite number in \(0, 1\)"),
    "delta 1": ({"delta": 1.0}, r"delta must be a finite number in \(0, 1\)"),
    "delta negative": ({"delta": -1e-5}, r"delta must be a finite number in \(0, 1\)"),
    "delta NaN": ({"delta": float("nan")}, r"delta must be a finite number"),
    "delta inf": ({"delta": float("inf")}, r"delta must be a finite number"),
    "delta text": ({"delta": "1e-5"}, "delta must be a number, got '1e-5'"),
    "delta a bool": ({"delta": True}, "delta must be a number, got True"),
    "delta None": ({"delta": None}, "delta must be a number, got None"),
    "rmia_a negative": ({"rmia_a": -0.1}, r"rmia_a must be a finite number in \[0, 1\]"),
    "rmia_a above 1": ({"rmia_a": 1.5}, r"rmia_a must be a finite number in \[0, 1\]"),
    "rmia_a NaN": ({"rmia_a": float("nan")}, "rmia_a must be a finite number"),
    "rmia_a text": ({"rmia_a": "0.3"}, "rmia_a must be a number"),
    "rmia_a a bool": ({"rmia_a": False}, "rmia_a must be a number"),
    "lira_centre unknown": ({"lira_centre": "mode"}, "lira_centre must be one of 'median', 'mean'"),
    "lira_centre None": ({"lira_centre": None}, "lira_centre must be one of"),
    "lira_centre a number": ({"lira_centre": 3}, "lira_centre must be one of"),
    "lira_counts unknown": ({"lira_counts": "sorted"}, "lira_counts must be one of 'equalised', 'raw'"),
    "lira_counts None": ({"lira_counts": None}, "lira_counts must be one of"),
    "classifier_rows 1": ({"classifier_rows": 1}, r"classifier_rows must be an integer in \[2, inf\]"),
    "classifier_rows negative": ({"classifier_rows": -5}, "classifier_rows must be an integer in"),
    "classifier_rows a float": ({"classifier_rows": 2.5}, "classifier_rows must be an integer, got 2.5"),
    "classifier_rows a bool": ({"classifier_rows": True}, "classifier_rows must be an integer, got True"),
    "classifier_rows text": ({"classifier_rows": "100"}, "classifier_rows must be an integer"),
    "title a number": ({"title": 3}, "title must be a string"),
    "title None": ({"title": None}, "title must be a string"),
    "views beyond": ({"views": [V]}, r"views must be distinct view indices in \[0, 2\)"),
    "views floats": ({"views": [0.0]}, "each of views must be an integer"),
    "views bools": ({"views": [True]}, "each of views must be an integer"),
    "views repeated": ({"views": [0, 0]}, "views must be distinct view indices"),
    "views empty": ({"views": []}, "views must be distinct view indices"),
    "views text": ({"views": "0"}, "views must be an integer or a list of integers"),
    "logits None": ({"logits": None}, "logits is None: pass an array"),
    "logits text": ({"logits": "abc"}, r"logits is not a numeric array \(dtype <U3\)"),
    "logits integers": ({"logits": np.ones((M, N, C), int)}, "logits must be float16, float32 or float64"),
    "logits complex": ({"logits": LOGITS.astype(complex)}, "logits is not a numeric array"),
    "logits 2-D": ({"logits": LOGITS[0, :, 0]}, r"logits must be \[M, N, C\] or \[M, N, V, C\]"),
    "logits 5-D": ({"logits": LOGITS[..., None]}, r"logits must be \[M, N, C\] or \[M, N, V, C\]"),
    "logits ragged": ({"logits": [[[0.0, 1.0]], [[0.0]]]}, "logits cannot be read as an array"),
    "one model": ({"logits": LOGITS[:1], "keep": KEEP[:1]}, "need M >= 2 models"),
    "one class": ({"logits": LOGITS[..., :1]}, "C >= 2 classes"),
    "probabilities": ({"logits": _probabilities(LOGITS)}, "look like probabilities.* np.log"),
    "log of zero": ({"logits": _log_of_zero()}, r"-inf at model 1, example 4\): a log of 0\?"),
    "logits NaN": ({"logits": _with(LOGITS, (2, 7, 1, 0), np.nan)}, r"nan at model 2, example 7"),
    "logits inf": ({"logits": _with(LOGITS, (3, 9, 0, 1), np.inf)}, r"inf at model 3, example 9"),
    "logits with the examples first": (
        {"logits": LOGITS.transpose(1, 0, 2, 3)},
        r"examples first.*logits\.transpose\(1, 0, 2, 3\)",
    ),
    "one-view logits with the examples first": (
        {"logits": LOGITS[:, :, 0].transpose(1, 0, 2)},
        r"logits\.transpose\(1, 0, 2\) \(models, examples, classes\)",
    ),
    "keep None": ({"keep": None}, "keep is None"),
    "keep transposed": ({"keep": KEEP.T}, r"transposed\? pass keep\.T"),
    "keep of another size": ({"keep": KEEP[:, :-1]}, r"keep must be \[M, N\] = \[6, 40\]"),
    "keep floats": ({"keep": KEEP.astype(float)}, "keep must be bool or 0/1 integers"),
    "keep holds 2": ({"keep": KEEP.astype(int) * 2}, "keep must be bool or 0/1 integers"),
    "keep text": ({"keep": "yes"}, "keep is not a numeric array"),
    "keep 3-D": ({"keep": KEEP[None]}, r"keep must be \[M, N\]"),
    "labels None": ({"labels": None}, "labels is None"),
    "labels floats": ({"labels": LABELS.astype(float)}, "labels must be integers"),
    "labels bools": ({"labels": LABELS > 0}, "labels must be integers"),
    "labels beyond the classes": ({"labels": LABELS + C}, r"labels must lie in \[0, 3\)"),
    "labels negative": ({"labels": LABELS - C}, r"labels must lie in \[0, 3\)"),
    "labels too short": ({"labels": LABELS[:-1]}, r"labels must be \[N\] = \[40\]"),
    "labels one-hot": ({"labels": np.eye(C)[LABELS]}, r"labels must be \[N\] = \[40\]"),
}


@pytest.mark.parametrize("case", list(BAD_CALLS))
def test_bad_arguments_of_audit_logits(case, tmp_path):
    changes, message = BAD_CALLS[case]
    arguments = {"logits": LOGITS, "keep": KEEP, "labels": LABELS, "attacks": ATTACKS, **changes}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning before the error
        with pytest.raises(UserError, match=message) as raised:
            lira_jax.audit_logits(arguments.pop("logits"), arguments.pop("keep"), arguments.pop("labels"), **arguments)
    assert "\n" not in str(raised.value)


def test_the_command_lines_forms_are_accepted():
    """attacks as the command line's comma string, targets as one index (Python or NumPy), a NumPy array or
    the command line's text: the same numbers as the list forms."""
    listed = lira_jax.audit_logits(LOGITS, KEEP, LABELS, attacks=ATTACKS, targets=[3]).metrics
    for attacks, targets in ((",".join(ATTACKS), 3), (ATTACKS, np.int64(3)), (tuple(ATTACKS), np.array([3]))):
        found = lira_jax.audit_logits(LOGITS, KEEP, LABELS, attacks=attacks, targets=targets).metrics
        assert found["targets"] == [3] and found["attacks"] == listed["attacks"]
    assert (
        lira_jax.audit_logits(LOGITS, KEEP, LABELS, attacks=ATTACKS, targets="3").metrics["attacks"]
        == listed["attacks"]
    )


@pytest.fixture(scope="module")
def audit(tmp_path_factory):
    """One audit of memmapped logits (their file is an input its writers must not replace)."""
    folder = tmp_path_factory.mktemp("inputs")
    np.save(folder / "logits.npy", LOGITS)
    logits = np.load(folder / "logits.npy", mmap_mode="r")
    return lira_jax.audit_logits(logits, KEEP, LABELS, attacks=ATTACKS), folder / "logits.npy"


def _fifo(folder):
    os.mkfifo(folder / "pipe.png")
    return folder / "pipe.png"


BAD_METHOD_CALLS = {  # name -> (call(audit, folder, the memmapped input), message)
    "top_lines negative": (lambda a, f, i: a.top_lines(-1), r"count must be an integer in \[0, inf\]"),
    "top_lines a float": (lambda a, f, i: a.top_lines(2.0), "count must be an integer, got 2.0"),
    "top_lines text": (lambda a, f, i: a.top_lines("3"), "count must be an integer"),
    "top_lines a bool": (lambda a, f, i: a.top_lines(True), "count must be an integer, got True"),
    "top_lines an unknown attack": (lambda a, f, i: a.top_lines(2, "vibes"), "attack must be one of"),
    "top_lines an attack not run": (lambda a, f, i: a.top_lines(2, "loss"), "attack must be one of"),
    "plot_roc None": (lambda a, f, i: a.plot_roc(None), r"path must be a file path \(str or pathlib.Path\)"),
    "plot_roc a number": (lambda a, f, i: a.plot_roc(5), "path must be a file path"),
    "plot_roc a folder": (lambda a, f, i: a.plot_roc(f), "is a folder"),
    "plot_roc a pipe": (lambda a, f, i: a.plot_roc(_fifo(f)), "is not a regular file"),
    "plot_roc a text file": (lambda a, f, i: a.plot_roc(f / "roc.txt"), "must end in .png, .pdf, .svg"),
    "plot_roc in a missing folder": (lambda a, f, i: a.plot_roc(f / "no" / "roc.png"), "is not a directory"),
    "plot_roc onto the input": (lambda a, f, i: a.plot_roc(i), "an input of this audit: refusing to overwrite"),
    "plot_roc headline text": (lambda a, f, i: a.plot_roc(f / "r.png", headline="yes"), "headline must be True"),
    "to_html images of other examples": (
        lambda a, f, i: a.to_html(f / "r.html", images=np.zeros((3, 8, 8))),
        r"images must be numeric .* with N = 40, got float64\[3, 8, 8\]",
    ),
    "to_html images text": (lambda a, f, i: a.to_html(f / "r.html", images="x"), "images is not a numeric array"),
    "to_html images 5-D": (
        lambda a, f, i: a.to_html(f / "r.html", images=np.zeros((N, 2, 2, 2, 2))),
        "images must be numeric",
    ),
    "to_html images not square": (
        lambda a, f, i: a.to_html(f / "r.html", images=np.zeros((N, 7))),
        r"images must be numeric .*\[N, H\*W\]",
    ),
    "to_html top negative": (lambda a, f, i: a.to_html(f / "r.html", top=-1), "top must be an integer in"),
    "to_html top a float": (lambda a, f, i: a.to_html(f / "r.html", top=1.5), "top must be an integer, got 1.5"),
    "to_html accuracy a list": (lambda a, f, i: a.to_html(f / "r.html", accuracy=[0.5]), "accuracy must be"),
    "to_html accuracy above 1": (
        lambda a, f, i: a.to_html(f / "r.html", accuracy={"train": [2.0], "test": [0.5]}),
        r'each of accuracy\["train"\] must be a finite number in \[0, 1\]',
    ),
    "to_html accuracy text": (
        lambda a, f, i: a.to_html(f / "r.html", accuracy={"train": "0.9", "test": [0.5]}),
        r'accuracy\["train"\] must be a list of numbers',
    ),
    "to_html accuracy lengths": (
        lambda a, f, i: a.to_html(f / "r.html", accuracy={"train": [1.0], "test": [0.5, 0.5]}),
        "differ in length",
    ),
    "to_html config a number": (lambda a, f, i: a.to_html(f / "r.html", config_text=5), "config_text must be"),
    "to_html title a number": (lambda a, f, i: a.to_html(f / "r.html", title=5), "title must be a string"),
    "to_html a folder": (lambda a, f, i: a.to_html(f), "is a folder"),
    "write_metrics_json onto the input": (lambda a, f, i: a.write_metrics_json(i), "refusing to overwrite"),
    "write_metrics_json a folder": (lambda a, f, i: a.write_metrics_json(f), "is a folder"),
    "write_metrics_csv a pipe": (lambda a, f, i: a.write_metrics_csv(_fifo(f)), "is not a regular file"),
    "write_examples_csv None": (lambda a, f, i: a.write_examples_csv(None), "path must be a file path"),
    "write_examples_csv through a link to the input": (
        lambda a, f, i: (os.symlink(i, f / "e.csv"), a.write_examples_csv(f / "e.csv")),
        "refusing to overwrite",
    ),
}


@pytest.mark.parametrize("case", list(BAD_METHOD_CALLS))
def test_bad_arguments_of_the_audit_methods(audit, tmp_path, case):
    result, source = audit
    call, message = BAD_METHOD_CALLS[case]
    before = source.read_bytes()
    with pytest.raises(UserError, match=message):
        call(result, tmp_path, source)
    assert source.read_bytes() == before
    assert sorted(path.name for path in tmp_path.iterdir()) in ([], ["pipe.png"], ["e.csv"])


# ------------------------------------------------------------------ extreme but finite inputs


def _scaled(scale, dtype):
    return (LOGITS / np.abs(LOGITS).max() * scale).astype(dtype)


EVERY_ATTACK = [name for name in ATTACKS_KNOWN if name != "ml_leaks_adv2"]


@pytest.mark.parametrize(
    ("scale", "dtype"),
    [(65504.0, np.float16), (1e38, np.float64), (1e300, np.float64), (3.4e38, np.float32), (500.0, np.float64)],
)
def test_extreme_logits_give_numbers_without_warnings(scale, dtype):
    """float16 near its largest value, float64 near and beyond float32's, float32 at its limit, margins of
    hundreds: every attack a number (RMIA's likelihood ratios in log space), no warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        found = lira_jax.audit_logits(_scaled(scale, dtype), KEEP, LABELS, attacks=EVERY_ATTACK)
    for name, values in found.metrics["attacks"].items():
        assert values["auc"] is not None or values.get("not_applicable"), name
    assert all(np.isfinite(column[~np.isnan(column)]).all() for column in found.examples.values())


def test_float16_logits_are_read_exactly():
    """float16 logits near 65,504 give the numbers of the same values in float64 (φ in float64 inside)."""
    half = _scaled(65504.0, np.float16)
    from_half = lira_jax.audit_logits(half, KEEP, LABELS, attacks=ATTACKS).metrics
    from_double = lira_jax.audit_logits(half.astype(np.float64), KEEP, LABELS, attacks=ATTACKS).metrics
    assert from_half["attacks"] == from_double["attacks"]


def test_any_byte_order():
    swapped = [array.astype(array.dtype.newbyteorder(">")) for array in (LOGITS, KEEP.astype(np.int8), LABELS)]
    native = lira_jax.audit_logits(LOGITS, KEEP, LABELS, attacks=ATTACKS).metrics
    assert lira_jax.audit_logits(*swapped, attacks=ATTACKS).metrics["attacks"] == native["attacks"]


def test_rmia_in_log_space_equals_rmia_in_probabilities():
    """Where every probability is of the form e^φ (φ far below 0) RMIA's ratios do not change when all φ of
    an example shift together: at φ − 100 the probabilities are floats, at φ − 1000 they underflow and the
    log-space path takes over; both give the same scores."""
    scores = lira_jax.logit_scale(LOGITS, LABELS).astype(np.float64)
    moderate = rmia(scores - 100.0, KEEP, online=True)
    extreme = rmia(scores - 1000.0, KEEP, online=True)
    np.testing.assert_allclose(extreme, moderate, atol=1e-6)
    offline = rmia(scores - 1000.0, KEEP, online=False, a=1.0)
    np.testing.assert_allclose(offline, rmia(scores - 100.0, KEEP, online=False, a=1.0), atol=1e-6)


def test_the_api_has_enough_hostile_cases():
    assert len(BAD_CALLS) + len(BAD_METHOD_CALLS) >= 100


def test_images_with_nan_and_inf_are_drawn_without_warnings(audit, tmp_path):
    images = np.random.default_rng(1).normal(size=(N, 6, 6))
    images[:, 0, 0], images[:, 1, 1] = np.nan, np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        audit[0].to_html(tmp_path / "report.html", images=images)
    assert (tmp_path / "report.html").read_text().count('class="thumbnail"') > 0
