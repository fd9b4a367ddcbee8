"""Hostile input, tried as a careful new user would: every case is one `error: ...` line on stderr, exit
status 2, no traceback, and the shared tiny trained run is left exactly as it was (nothing of it
overwritten, nothing written next to it). The run is the suite's shared tiny run (conftest.tiny_run)."""

import json
import os
import shutil
from pathlib import Path

import pytest
from conftest import TINY_RUN, tiny_settings
from hostile import LAYOUTS, fails_cleanly, snapshot

from lira_jax import attack, study, train

TINY = ["--quiet", "--no-attack", *tiny_settings()]
SHARED = ["--quiet", "--no-attack", *TINY_RUN]  # the shared run's own config


@pytest.fixture(scope="module")
def trained(tiny_run) -> Path:
    """The suite's shared tiny run (conftest): read only; a case that changes a run copies it first."""
    return tiny_run


# ------------------------------------------------------------------ train: config values and options

BAD_TRAIN = {
    "train.learning_rate=nan": "learning_rate must be a finite number",
    "train.learning_rate=inf": "learning_rate must be a finite number",
    "train.learning_rate=-1": "learning_rate must be a finite number in",
    "train.warmup_epochs=nan": "warmup_epochs must be a finite number",
    "train.warmup_epochs=-1": "warmup_epochs",
    "train.checkpoint_minutes=inf": "checkpoint_minutes must be a finite number",
    "train.checkpoint_minutes=nan": "checkpoint_minutes must be a finite number",
    "train.dp_noise_multiplier=nan": "dp_noise_multiplier",
    "train.dp_noise_multiplier=-inf": "dp_noise_multiplier",
    "train.dp_clip_norm=inf": "dp_clip_norm",
    "train.dp_delta=nan": r"dp_delta must be a finite number in \(0, 1\)",
    "train.dp_delta=-5": r"dp_delta must be a finite number in \(0, 1\)",
    "train.dp_delta=1": r"\(0, 1\)",
    "train.momentum=nan": "momentum",
    "train.momentum=1": "momentum",
    "train.weight_decay=-inf": "weight_decay",
    "train.label_smoothing=nan": "label_smoothing",
    "train.augment_strength=inf": "augment_strength",
    "train.keep_probability=nan": "keep_probability",
    "model.dropout=nan": "dropout",
    "vary.learning_rate=[nan, 0.1]": "vary.learning_rate",
    "vary.weight_decay=[0.1, inf]": "vary.weight_decay",
    "train.seed=-1": r"train.seed must be an integer in \[0, 4294967295\]",
    "train.seed=4294967296": "train.seed",
    "train.seed=99999999999999999999999": "train.seed",
    "train.epochs=0": "train.epochs must be an integer in",
    "train.epochs=2147483648": "train.epochs",
    "train.batch_size=0": "train.batch_size",
    "train.num_models=1": "train.num_models",
    "train.num_models=3": "even",
    "train.num_models=1e9": "train.num_models must be a int",
    "model.width=0": "model.width",
    "model.widen=0": "model.widen",
    "query.batch_size=-1": "query.batch_size",
    "query.save_epochs=[0]": "query.save_epochs",
    "train.models_per_step=0": "models_per_step",
    "data.limit=-1": "data.limit",
    "data.limit=3": "model . would train on 1 of the 3 examples",  # 4 models: 2, 1, 2, 1 examples
    "data.limit=1": "only class 0",
    "data.source=nowhere": "unknown data source",
    "train.nonsense=1": "unknown config key",
}


@pytest.mark.parametrize("assignment", list(BAD_TRAIN))
def test_bad_config_values(tmp_path, capsys, assignment):
    out = tmp_path / "new"
    fails_cleanly(train.main, ["--out", out, *TINY, "--set", assignment], BAD_TRAIN[assignment], capsys)
    assert not out.exists()


@pytest.mark.parametrize(
    ("assignments", "message"),
    [
        (["model.arch=wrn", "model.depth=29"], "6k \\+ 4"),
        (["model.arch=wrn", "model.depth=4"], "6k \\+ 4 with k >= 1"),
        (["train.dp_sgd=true"], "model.norm = 'group'"),
        (["train.num_models=100000000000"], "train.num_models must be an integer in"),
    ],
)
def test_bad_config_combinations(tmp_path, capsys, assignments, message):
    argv = ["--out", tmp_path / "new", *TINY]
    for assignment in assignments:
        argv += ["--set", assignment]
    fails_cleanly(train.main, argv, message, capsys)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--models", "0:100000000000000000000"], "outside"),
        (["--models", "a:b"], "expects A:B"),
        (["--models", "3:1"], "outside"),
        (["--devices", "0"], "--devices 0"),
        (["--devices", "100000000000000000000"], "--devices"),
        (["--devices", "x"], "invalid int value"),
        (["--config", "/nonexistent.toml"], "does not exist"),
        (["--config", "/"], "cannot read config file"),
    ],
)
def test_bad_train_options(tmp_path, capsys, arguments, message):
    fails_cleanly(train.main, ["--out", tmp_path / "new", *TINY, *arguments], message, capsys)


def broken_copy(trained: Path, tmp_path: Path, change) -> Path:
    run = tmp_path / "copy"
    shutil.copytree(trained, run)
    change(run)
    return run


BROKEN_RUNS = {
    "models.json is not JSON": (lambda run: (run / "models.json").write_text("{"), "models.json is not a JSON"),
    "models.json lists nothing": (
        lambda run: (run / "models.json").write_text('{"models": [{"done": "yes"}]}'),
        "models.json is not a JSON",
    ),
    "models.json is a folder": (
        lambda run: ((run / "models.json").unlink(), (run / "models.json").mkdir()),
        "models.json",
    ),
    "config.toml is garbage": (lambda run: (run / "config.toml").write_text("[train\n"), "not valid TOML"),
}


@pytest.mark.parametrize("case", list(BROKEN_RUNS))
def test_status_and_resume_of_a_broken_run(trained, tmp_path, capsys, case):
    change, message = BROKEN_RUNS[case]
    run = broken_copy(trained, tmp_path, change)
    if case != "config.toml is garbage":
        fails_cleanly(train.main, ["--status", run], message, capsys)
    fails_cleanly(train.main, ["--out", run, *SHARED], message, capsys)


def test_another_config_on_a_finished_run_is_refused(trained, capsys):
    before = snapshot(trained)
    fails_cleanly(train.main, ["--out", trained, *SHARED, "--set", "train.seed=1"], "different config", capsys)
    assert snapshot(trained) == before


def test_out_is_a_file(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    fails_cleanly(train.main, ["--out", tmp_path / "file", *TINY], "not a folder", capsys)


# ------------------------------------------------------------------ attack: options and output paths

FAST = ["--attacks", "lira_offline_fixed_var,global_threshold"]


def attack_cases(run: Path, tmp_path: Path) -> dict[str, tuple[list, str]]:
    """name -> (attack argv after RUN, message)."""
    (tmp_path / "link").symlink_to(run / "config.toml")
    os.link(run / "labels.npy", tmp_path / "hard")
    return {
        "targets huge": (["--targets", "0:100000000000000000000"], "--targets '0:100000000000000000000' must be A:B"),
        "targets negative": (["--targets", "-1"], "--targets"),
        "targets letters": (["--targets", "a:b"], "--targets must be"),
        "targets backwards": (["--targets", "3:1"], "--targets"),
        "targets empty": (["--targets", ""], "--targets"),
        "targets repeated": (["--targets", "1,1"], "distinct"),
        "delta nan": (["--delta", "nan"], r"--delta must be a finite number in \(0, 1\)"),
        "delta negative": (["--delta", "-5"], r"--delta must be a finite number in \(0, 1\)"),
        "delta inf": (["--delta", "inf"], "--delta"),
        "delta zero": (["--delta", "0"], "--delta"),
        "delta one": (["--delta", "1"], "--delta"),
        "delta text": (["--delta", "small"], "invalid float value"),
        "rmia a nan": (["--attacks", "rmia_offline", "--rmia-a", "nan"], "RMIA needs"),
        "lira counts": (["--lira-counts", "some"], "invalid choice"),
        "unknown attack": (["--attacks", "lira_sideways"], "--attacks takes names"),
        "epoch not saved": (["--epoch", "5"], "epoch 5 was not saved"),
        "epoch negative": (["--epoch", "-1"], "epoch -1 was not saved"),
        "mask": (["--mask", "top:0"], "--mask"),
        "examples": (["--distributions", tmp_path / "d.png", "--examples", "99999"], "--examples must lie"),
        "json keep.npy": (["--json", run / "keep.npy"], "a file of the run"),
        "json scores via ..": (["--json", run / ".." / run.name / "scores.npy"], "a file of the run"),
        "json config symlink": (["--json", tmp_path / "link"], "a file of the run"),
        "json hard link": (["--json", tmp_path / "hard"], "a link to"),
        "json models.json": (["--json", run / "models.json"], "a file of the run"),
        "json the run itself": (["--json", run], "is a folder"),
        "json checkpoints": (["--json", run / "checkpoints" / "x.json"], "checkpoints of the run"),
        "json claims": (["--json", run / ".claims"], "a file of the run"),
        "json missing folder": (["--json", tmp_path / "nowhere" / "m.json"], "is not a directory"),
        "plot logits": (["--plot", run / "logits.npy"], "a file of the run"),
        "plot labels via ..": (["--plot", run / "epochs" / ".." / "labels.npy"], "a file of the run"),
        "distributions scores": (["--distributions", run / "scores.npy"], "a file of the run"),
        "distributions folder": (["--distributions", tmp_path], "is a folder"),
        "shadow run itself": (["--attacks", "ml_leaks_adv2", "--shadow-run", run], "must be another run folder"),
        "classifier rows": (["--attacks", "shokri", "--classifier-rows", "-1"], "rows"),
    }


ATTACK_CASE_NAMES = [
    "targets huge",
    "targets negative",
    "targets letters",
    "targets backwards",
    "targets empty",
    "targets repeated",
    "delta nan",
    "delta negative",
    "delta inf",
    "delta zero",
    "delta one",
    "delta text",
    "rmia a nan",
    "lira counts",
    "unknown attack",
    "epoch not saved",
    "epoch negative",
    "mask",
    "examples",
    "json keep.npy",
    "json scores via ..",
    "json config symlink",
    "json hard link",
    "json models.json",
    "json the run itself",
    "json checkpoints",
    "json claims",
    "json missing folder",
    "plot logits",
    "plot labels via ..",
    "distributions scores",
    "distributions folder",
    "shadow run itself",
    "classifier rows",
]


@pytest.mark.parametrize("case", ATTACK_CASE_NAMES)
def test_bad_attack_input_leaves_the_run_untouched(trained, tmp_path, capsys, case):
    arguments, message = attack_cases(trained, tmp_path)[case]
    before = snapshot(trained)
    fails_cleanly(attack.main, [trained, *FAST, *arguments], message, capsys)
    assert snapshot(trained) == before


UNFINISHED = {
    "models.json missing": (lambda run: (run / "models.json").unlink(), "has no models.json"),
    "models.json broken": (lambda run: (run / "models.json").write_text("[1, 2"), "models.json is not a JSON"),
    "a model not done": (
        lambda run: (run / "models.json").write_text(
            json.dumps({"models": [{**record, "done": index != 2} for index, record in enumerate(read(run))]})
        ),
        "has 3 of 4 models finished",
    ),
    "a model diverged": (
        lambda run: (run / "models.json").write_text(
            json.dumps({"models": [{**r, "done": i != 1, "diverged": i == 1} for i, r in enumerate(read(run))]})
        ),
        "has 3 of 4 models finished",
    ),
    "keep.npy garbage": (lambda run: (run / "keep.npy").write_bytes(b"garbage"), r"keep\.npy is not a \.npy file"),
    "scores.npy missing": (lambda run: (run / "scores.npy").unlink(), "scores.npy is missing"),
    "run is a file": (lambda run: (shutil.rmtree(run), run.write_text("x")), "is not a directory"),
}


def read(run: Path) -> list[dict]:
    return json.loads((run / "models.json").read_text())["models"]


@pytest.mark.parametrize("case", list(UNFINISHED))
def test_an_unfinished_or_damaged_trained_run_is_not_attacked(trained, tmp_path, capsys, case):
    change, message = UNFINISHED[case]
    run = broken_copy(trained, tmp_path, change)
    before = snapshot(run) if run.is_dir() else None
    fails_cleanly(attack.main, [run, *FAST], message, capsys)
    assert (snapshot(run) if run.is_dir() else None) == before


def test_logits_from_elsewhere_stay_attackable(trained, tmp_path, capsys):
    """No config.toml: not trained here, so models.json may be absent and every model is used."""
    run = broken_copy(trained, tmp_path, lambda run: ((run / "config.toml").unlink(), (run / "models.json").unlink()))
    assert attack.main([str(run), *FAST]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["num_models"] == 4 and metrics["options"]["lira_counts"] == "equalised"


def test_a_read_only_run_folder_is_one_line(trained, tmp_path, capsys):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    run = broken_copy(trained, tmp_path, lambda run: run.chmod(0o555))
    try:
        fails_cleanly(attack.main, [run, *FAST], "cannot write", capsys)
    finally:
        run.chmod(0o755)


def test_metrics_json_in_the_way_as_a_folder(trained, tmp_path, capsys):
    run = broken_copy(trained, tmp_path, lambda run: ((run / "metrics.json").unlink(), (run / "metrics.json").mkdir()))
    fails_cleanly(attack.main, [run, *FAST], "is a folder", capsys)


# ------------------------------------------------------------------ study


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["nonsense", "{run}"], "unknown study"),
        (["shadows", "{run}", "--counts", "two"], "--counts must be I,J"),
        (["shadows", "{run}", "--seed", "x"], "invalid int value"),
        (["violins", "{run}", "--targets", "0:100000000000000000000"], "--targets"),
        (["gap", "{run}", "{run}"], "same run folder twice"),
        (["shadows", "{run}", "--out", "{run}/keep.npy"], "not a folder"),
        (["shadows", "{run}", "--out", "{run}/checkpoints"], "checkpoints of the run"),
        (["shadows", "{run}/nowhere"], "not a directory|does not exist|missing"),
    ],
)
def test_bad_study_input(trained, capsys, arguments, message):
    before = snapshot(trained)
    fails_cleanly(study.main, [part.format(run=trained) for part in arguments], message, capsys)
    assert snapshot(trained) == before


def test_the_suite_has_enough_cases():
    """This file's cases (train, study, the trained run), and the hostile cases of the attack's entry points
    (issue 20: at least 200 over the run folder, plain folders, the reference layouts and the API; the
    API's are counted in tests/audit/test_hostile_api.py)."""
    counted = len(BAD_TRAIN) + 4 + 8 + 2 * len(BROKEN_RUNS) + len(ATTACK_CASE_NAMES) + len(UNFINISHED) + 8
    assert counted >= 80
    from test_hostile_inputs import PLAIN, PLAIN_OPTIONS, PORT, REFERENCE, RUN
    from test_hostile_outputs import INPUT_FILES, OUTPUT_CASES

    outputs = {layout: len(OUTPUT_CASES) + 2 * sum(found == layout for found, _ in INPUT_FILES) for layout in LAYOUTS}
    per_entry = {
        "run folder": len(ATTACK_CASE_NAMES) + len(UNFINISHED) + len(RUN) + 1 + outputs["run"],
        "plain folder": len(PLAIN) + len(PLAIN_OPTIONS) + outputs["plain"],
        "reference layouts": len(REFERENCE) + len(PORT) + outputs["reference"] + outputs["port"],
    }
    assert all(count >= 50 for count in per_entry.values()) and sum(per_entry.values()) >= 200, per_entry
