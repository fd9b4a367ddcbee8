"""Edited or damaged records and data files (issue 25 §3, §5): a trained run must keep its own promises (the
logits its config keeps, done records complete, its snapshots among query.save_epochs), and a damaged
models.json, reference folder, IDX or npz file is one `error:` line, exit 2, and nothing written or changed
(bytes, inodes and mtimes of the whole folder compared). In-process, on tiny folders written without
training; the data-file cases stop in `train` before a run folder exists."""

import dataclasses
import gzip
import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
from hostile import FAST, experiment, make_input, only_scores, refused, write_trained

from lira_jax import attack, study, train
from lira_jax import config as config_lib


def _edit_record(run: Path, index: int, change) -> None:
    models = json.loads((run / "models.json").read_text())
    change(models["models"][index])
    (run / "models.json").write_text(json.dumps(models))


def _pop(name):
    return lambda record: record.pop(name)


def _put(name, value):
    return lambda record: record.update({name: value})


EDITED_RECORDS = {  # name -> (change to model 3's record, message)
    "no train_accuracy": (_pop("train_accuracy"), r'model 3 is marked done but its record has no "train_accuracy"'),
    "no test_accuracy": (_pop("test_accuracy"), r'model 3 .*no "test_accuracy"'),
    "no members": (_pop("members"), r'model 3 .*no "members"'),
    "no chunk_seconds": (_pop("chunk_seconds"), r'model 3 .*no "chunk_seconds"'),
    "no train_seconds": (_pop("train_seconds"), r'model 3 .*no "train_seconds"'),
    "train_accuracy above 1": (_put("train_accuracy", 1.5), r'"train_accuracy" is 1.5, not a number in \[0, 1\]'),
    "train_accuracy a string": (_put("train_accuracy", "0.9"), r"\"train_accuracy\" is '0.9'"),
    "train_accuracy NaN": (_put("train_accuracy", float("nan")), r'"train_accuracy" is nan'),
    "test_accuracy negative": (_put("test_accuracy", -0.1), r'"test_accuracy" is -0.1'),
    "members a bool": (_put("members", True), r'"members" is True, not a count'),
    "members a float": (_put("members", 20.0), r'"members" is 20.0, not a count'),
    "members off by one": (lambda r: r.update(members=r["members"] + 1), r"not the \d+ that keep.npy gives it"),
    "negative seconds": (_put("chunk_seconds", -1), r'"chunk_seconds" is -1'),
    "infinite seconds": (_put("train_seconds", float("inf")), r'"train_seconds" is inf'),
    "no snapshot record": (_pop("epochs"), r'no "epochs" entry for the snapshot at epoch 1'),
    "snapshot record not an object": (_put("epochs", {"1": 0.5}), r"snapshot at epoch 1"),
    "never trained, marked done": (
        lambda r: [r.pop(key) for key in list(r) if key not in ("index", "done")],
        r'model 3 is marked done but its record has no "train_accuracy".*set its "done" to false',
    ),
    "index of another model": (_put("index", 5), r'record 3 has "index": 5'),
    "index a string": (_put("index", "3"), r"record 3 has \"index\": '3'"),
}


@pytest.mark.parametrize("case", list(EDITED_RECORDS))
def test_an_edited_done_record_is_refused_naming_model_and_field(tmp_path, capsys, case):
    run = write_trained(tmp_path / "run")
    change, message = EDITED_RECORDS[case]
    _edit_record(run, 3, change)
    refused(tmp_path, attack.main, [run, *FAST], message, capsys)


@pytest.mark.parametrize("case", ["no members", "never trained, marked done", "no snapshot record"])
def test_a_resume_refuses_an_edited_done_record_before_any_work(tmp_path, capsys, case):
    """train on the run's own config: refused at the resume check, before the data is even read."""
    run = write_trained(tmp_path / "run")
    change, message = EDITED_RECORDS[case]
    _edit_record(run, 3, change)
    refused(tmp_path, train.main, ["--out", run, "--set", "query.save_epochs=[1]", "--quiet"], message, capsys)


def test_a_study_refuses_an_edited_record_too(tmp_path, capsys):
    run = write_trained(tmp_path / "run")
    _edit_record(run, 0, _pop("members"))
    refused(tmp_path, study.main, ["violins", run], r'model 0 .*no "members"', capsys)


DEEP = 100_000
DAMAGED_MODELS_JSON = {  # name -> (content of models.json, message)
    "empty": (b"", r"models.json is not a JSON object .*Expecting value"),
    "only whitespace": (b"  \n\t\n", r"Expecting value"),
    "nested lists": (b"[" * DEEP + b"]" * DEEP, r"models.json is nested too deeply"),
    "nested under models": (b'{"models": ' + b"[" * DEEP + b"]" * DEEP + b"}", r"nested too deeply"),
    "nested objects": (b'{"a":' * DEEP + b"1" + b"}" * DEEP, r"nested too deeply"),
    "not UTF-8": (b"\xff\xfe\x00garbage", r"models.json is not a JSON object"),
    "a list": (b"[]", r"models.json is not a JSON object"),
    "models not a list": (b'{"models": {"0": {"done": true}}}', r"every record must be an object"),
    "a record not an object": (b'{"models": [true, 1, 2, 3, 4, 5]}', r"every record must be an object"),
    "done a string": (b'{"models": [{"done": "true"}]}', r'"done": true or false'),
    "too few records": (json.dumps({"models": [{"index": 0, "done": True}]}).encode(), r"must list 6 models"),
    "truncated": (b'{"models": [{"index": 0, "done": tr', r"models.json is not a JSON object"),
}


@pytest.mark.parametrize("case", list(DAMAGED_MODELS_JSON))
@pytest.mark.parametrize("command", ["attack", "status"])
def test_a_damaged_models_json_is_one_line(tmp_path, capsys, case, command):
    run = write_trained(tmp_path / "run")
    content, message = DAMAGED_MODELS_JSON[case]
    (run / "models.json").write_bytes(content)
    if command == "attack":
        refused(tmp_path, attack.main, [run, *FAST], message, capsys)
    elif "must list" not in message:  # --status reads models.json alone
        refused(tmp_path, train.main, ["--status", run], message, capsys)


def _rewrite_config(run: Path, **query) -> None:
    config = config_lib.load(run / "config.toml")
    config = dataclasses.replace(config, query=dataclasses.replace(config.query, **query))
    (run / "config.toml").write_text(config_lib.to_toml(config))


def _stray_snapshot(run: Path) -> list:
    shutil.copytree(run / "epochs" / "1", run / "epochs" / "2")
    return ["--epoch", "2"]


PROMISES = {  # name -> (change to the run, returning extra arguments; message)
    "logits.npy deleted": (
        lambda run: (run / "logits.npy").unlink() or [],
        r"run/logits.npy is missing, but the run's config keeps logits \(query.logits_dtype = float32\)",
    ),
    "the snapshot's logits deleted": (
        lambda run: (run / "epochs" / "1" / "logits.npy").unlink() or ["--epoch", "1"],
        r"epochs/1/logits.npy is missing, but the run's config keeps logits",
    ),
    "a snapshot the config never saved": (_stray_snapshot, r"epochs/2 is not a snapshot of this run: .*saves epochs 1"),
    "a snapshot of a config that saves none": (
        lambda run: _rewrite_config(run, save_epochs=()) or ["--epoch", "1"],
        r"its config saves epochs none",
    ),
    "logits.npy deleted, float16 config": (
        lambda run: _rewrite_config(run, logits_dtype="float16") or (run / "logits.npy").unlink() or [],
        r"query.logits_dtype = float16",
    ),
}


@pytest.mark.parametrize("case", list(PROMISES))
def test_a_trained_run_keeps_its_own_promises(tmp_path, capsys, case):
    run = write_trained(tmp_path / "run")
    change, message = PROMISES[case]
    extra = change(run)
    refused(tmp_path, attack.main, [run, *FAST, *extra], message, capsys)


def test_a_run_that_keeps_no_logits_is_attacked_without_them(tmp_path, capsys):
    run = write_trained(tmp_path / "run")
    _rewrite_config(run, logits_dtype="none")
    for folder in (run, run / "epochs" / "1"):
        (folder / "logits.npy").unlink()
    assert attack.main([str(run), "--attacks", "global_threshold"]) == 0
    assert "error" not in capsys.readouterr().err


def test_a_reference_folder_mixing_logits_only_and_scores_only_models(tmp_path, capsys):
    folder, arguments = make_input(tmp_path, "reference")
    only_scores(experiment(folder, 2))
    shutil.rmtree(experiment(folder, 4) / "scores")
    message = r"experiment-2_6 have only scores and experiment-4_6 only logits; every model needs the same kind"
    refused(tmp_path, attack.main, [*arguments, *FAST], message, capsys)


def test_a_port_folder_mixing_logits_only_and_scores_only_models(tmp_path, capsys):
    folder, arguments = make_input(tmp_path, "port")
    (folder / "1" / "logits.npy").unlink()
    (folder / "5" / "scores.npy").unlink()
    refused(tmp_path, attack.main, [*arguments, *FAST], r"1 have only scores and 5 only logits", capsys)


# ------------------------------------------------------------------ damaged data files, read by `train`


def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def _idx_folder(folder: Path, images: bytes | None = None, gzipped: bool = True) -> Path:
    """MNIST-format files (train split only), the train images' bytes replaced by `images` if given."""
    folder.mkdir()
    generator = np.random.default_rng(0)
    files = {
        "train-images-idx3-ubyte": _idx(generator.integers(0, 256, (8, 5, 4))),
        "train-labels-idx1-ubyte": _idx(np.arange(8) % 2),
    }
    for name, content in files.items():
        if name == "train-images-idx3-ubyte" and images is not None:
            (folder / (name + ".gz")).write_bytes(images)
            continue
        (folder / (name + (".gz" if gzipped else ""))).write_bytes(gzip.compress(content) if gzipped else content)
    return folder


def _images() -> bytes:
    return _idx(np.random.default_rng(0).integers(0, 256, (8, 5, 4)))


def _corrupt_inside(content: bytes) -> bytes:
    """A gzip stream whose deflate data is garbage past its header (zlib.error inside)."""
    packed = bytearray(gzip.compress(content, compresslevel=1))
    packed[12:40] = bytes(range(3, 31))
    return bytes(packed)


def _wrong_crc(content: bytes) -> bytes:
    packed = bytearray(gzip.compress(content))
    packed[-8] ^= 0xFF
    return bytes(packed)


GZIP_DAMAGE = {  # name -> (the train images file's bytes, message)
    "corrupt inside the stream": (_corrupt_inside(_images()), r"cannot read IDX file .*train-images-idx3-ubyte.gz"),
    "cut off mid-stream": (gzip.compress(_images())[:30], r"cannot read IDX file .*(ends early|end-of-stream)"),
    "a gzip magic and garbage": (b"\x1f\x8b" + b"\x00" * 40, r"cannot read IDX file"),
    "a wrong CRC": (_wrong_crc(_images()), r"cannot read IDX file .*CRC"),
    "only the gzip header": (gzip.compress(_images())[:10], r"cannot read IDX file"),
    "dimensions whose product overflows int64": (
        gzip.compress(bytes([0, 0, 0x0E, 3]) + struct.pack(">3I", 2**32 - 1, 2**32 - 1, 2**32 - 1) + b"\0" * 64),
        r"is truncated: \d+ bytes, the header \(4294967295, 4294967295, 4294967295\) needs",
    ),
    "dimensions whose product wraps to the file size": (
        gzip.compress(bytes([0, 0, 0x08, 2]) + struct.pack(">2I", 2**32 - 1, 2**32 + 1 & 0xFFFFFFFF) + b"\0"),
        r"is (truncated|longer than its header says)",
    ),
    "255 dimensions, header cut short": (gzip.compress(bytes([0, 0, 0x08, 255]) + b"\0" * 16), r"header is incomplete"),
    "an empty gzip stream": (gzip.compress(b""), r"is not an IDX file"),
}


@pytest.mark.parametrize("case", list(GZIP_DAMAGE))
def test_a_damaged_idx_file_is_one_line_and_creates_no_run(tmp_path, capsys, case):
    content, message = GZIP_DAMAGE[case]
    data = _idx_folder(tmp_path / "data", images=content)
    argv = ["--out", tmp_path / "run", "--set", f"data.source=idx:{data}", "--set", "data.splits=train", "--quiet"]
    refused(tmp_path, train.main, argv, message, capsys)
    assert not (tmp_path / "run").exists()


def _npz(path: Path, damage) -> Path:
    np.savez_compressed(path, x=np.zeros((8, 4, 4, 1), np.uint8), y=np.arange(8) % 2)
    path.write_bytes(damage(path.read_bytes()))
    return path


def _corrupt_member(content: bytes) -> bytes:
    """The compressed bytes of the first member garbled, its zip directory intact."""
    data = bytearray(content)
    start = data.index(b"x.npy") + len("x.npy") + 20
    data[start : start + 20] = bytes(range(100, 120))
    return bytes(data)


NPZ_DAMAGE = {
    "a member garbled inside": (_corrupt_member, r"cannot read .*data.npz as an .npz"),
    "cut in half": (lambda content: content[: len(content) // 2], r"cannot read .*data.npz as an .npz"),
    "zip directory lost": (lambda content: content[: content.rindex(b"PK\x01\x02")], r"cannot read .*data.npz"),
}


@pytest.mark.parametrize("case", list(NPZ_DAMAGE))
def test_a_damaged_npz_is_one_line_and_creates_no_run(tmp_path, capsys, case):
    damage, message = NPZ_DAMAGE[case]
    data = _npz(tmp_path / "data.npz", damage)
    argv = ["--out", tmp_path / "run", "--set", f"data.source=npz:{data}", "--quiet"]
    refused(tmp_path, train.main, argv, message, capsys)
    assert not (tmp_path / "run").exists()


def test_a_config_nested_too_deeply(tmp_path, capsys):
    config = tmp_path / "deep.toml"
    config.write_text("[train]\nx = " + "[" * DEEP + "]" * DEEP + "\n")
    refused(tmp_path, train.main, ["--config", config, "--out", tmp_path / "run"], r"nested too deeply", capsys)


def test_a_set_value_nested_too_deeply(tmp_path, capsys):
    argv = ["--set", "train.epochs=" + "[" * DEEP + "]" * DEEP, "--out", tmp_path / "run"]
    refused(tmp_path, train.main, argv, r"--set train.epochs: the value is nested too deeply", capsys)


@pytest.mark.parametrize("extra", [{}, {"diverged": True}])
def test_status_reads_records_without_an_index_by_their_position(tmp_path, capsys, extra):
    run = write_trained(tmp_path / "run")
    (run / "models.json").write_text(json.dumps({"models": [{"done": False, **extra}] * 6}))
    assert train.main(["--status", str(run)]) == 0
    printed = capsys.readouterr().out
    assert "0 of 6 models done" in printed and "to train: 0:6" in printed
    assert ("diverged (not done): 0:6" in printed) == bool(extra)
