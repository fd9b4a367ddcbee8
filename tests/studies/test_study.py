"""lira_jax.study: each study in small form on hand-built run folders, against plain recomputation."""

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import HANG_GUARD_S
from run_folders import trained_records, write_run
from scipy import stats

from lira_jax import config as config_lib
from lira_jax.audit.evaluate import run_attack
from lira_jax.audit.inputs.phi import logit_scale
from lira_jax.audit.metrics import attack_metrics
from lira_jax.audit.registry import score_attacks
from lira_jax.studies.runner import run_study
from lira_jax.studies.shadows import shadow_counts
from lira_jax.study import main


def make_run(folder: Path, *, dropout=0.0, records=None, views=("identity",), **options) -> Path:
    """write_run's folder (one view by default), plus config.toml and models.json with accuracies from the
    logits on the identity view."""
    options = {"num_models": 8, "num_examples": 300, "num_views": len(views), **options}
    run = write_run(folder, **options)
    config = config_lib.Config()
    config = dataclasses.replace(
        config,
        model=dataclasses.replace(config.model, dropout=dropout),
        query=dataclasses.replace(config.query, views=views),
    )
    (run / "config.toml").write_text(config_lib.to_toml(config))
    keep, labels = np.load(run / "keep.npy"), np.load(run / "labels.npy")
    correct = np.load(run / "logits.npy")[:, :, views.index("identity")].argmax(axis=-1) == labels
    models = [
        {
            **record,
            "train_accuracy": float(correct[index][keep[index]].mean()),
            "test_accuracy": float(correct[index][~keep[index]].mean()),
            **(records[index] if records else {}),
        }
        for index, record in enumerate(trained_records(keep))
    ]
    (run / "models.json").write_text(json.dumps({"models": models}))
    return run


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    return {
        "signal": make_run(root / "signal", signal=2.0),
        "null": make_run(root / "null", signal=0.0, dropout=0.5, records=[{"dp_epsilon": 3.0}] * 8),
    }


def test_defence_table_equals_the_attack_and_a_null_control(runs, tmp_path, capsys):
    data = run_study("defences", [runs["signal"], runs["null"]], tmp_path / "out")
    printed = capsys.readouterr().out
    assert printed.strip() in (tmp_path / "out" / "defences.md").read_text()
    assert (tmp_path / "out" / "defences.png").stat().st_size > 10_000
    assert json.loads((tmp_path / "out" / "defences.json").read_text())["runs"][0]["label"] == "signal"
    signal, null = data["runs"]
    assert null["label"] == "model.dropout=0.5" and null["epsilon"] == "3" and signal["epsilon"] is None
    assert "| ε |" in printed and "∞ (no DP)" in printed
    for row, run in zip(data["runs"], (runs["signal"], runs["null"]), strict=True):
        models = json.loads((run / "models.json").read_text())["models"]
        train = np.mean([record["train_accuracy"] for record in models])
        test = np.mean([record["test_accuracy"] for record in models])
        assert row["train_accuracy"] == pytest.approx(train) and row["gap"] == pytest.approx(train - test)
        expected = run_attack(run, json_path=tmp_path / "m.json", plot_path=tmp_path / "roc.png", print_table=False)
        scored = {name: metrics for name, metrics in expected["attacks"].items() if "not_applicable" not in metrics}
        assert list(row["attacks"]) == list(scored)  # the study leaves out what the attack reports n/a
        for name, metrics in scored.items():
            assert row["attacks"][name]["auc"] == pytest.approx(metrics["auc"], abs=1e-12)
            assert row["attacks"][name]["at_fpr"]["0.001"] == metrics["at_fpr"]["0.001"]
    assert signal["attacks"]["lira_offline"]["auc"] > 0.75 and signal["gap"] > 0.05
    for name in ("lira_offline", "global_threshold", "rmia_offline"):
        assert abs(null["attacks"][name]["auc"] - 0.5) < 0.05, name
    assert abs(null["gap"]) < 0.05


def test_gap_per_target_against_plain_recomputation(tmp_path):
    """Models with membership signals from 0 to 3: per target TPR, AUC and both gaps, and their correlation."""
    num_models = 12
    strengths = np.linspace(0, 3, num_models)
    hyperparameters = [{"hyperparameters": {"learning_rate": float(s), "epochs": 2}} for s in strengths]
    run = make_run(tmp_path / "run", num_models=num_models, num_examples=400, signal=0.0, records=hyperparameters)
    keep = np.load(run / "keep.npy")
    scores = np.load(run / "scores.npy") + (strengths[:, None] * keep)[:, :, None].astype(np.float32)
    np.save(run / "scores.npy", scores)
    _keep_no_logits(run)  # scores.npy no longer φ of the logits: a trained run's would be refused
    data = run_study("gap", [run], tmp_path / "out")
    from lira_jax.audit.attacks.lira.lira import lira

    online = lira(scores, keep)
    models = json.loads((run / "models.json").read_text())["models"]
    for target, point in enumerate(data["targets"]):
        members, nonmembers = online[target][keep[target]], online[target][~keep[target]]
        allowed = int(np.floor(0.001 * len(nonmembers)))  # 0 here: the TPR at zero false positives
        threshold = np.sort(nonmembers)[::-1][allowed]
        assert point["tpr_at_0.1%_fpr"] == pytest.approx(np.mean(members > threshold))
        assert point["auc"] == pytest.approx(
            np.mean(members[:, None] > nonmembers) + 0.5 * np.mean(members[:, None] == nonmembers)
        )
        loss = np.log1p(np.exp(-scores[target, :, 0].astype(np.float64)))
        assert point["loss_gap"] == pytest.approx(loss[~keep[target]].mean() - loss[keep[target]].mean())
        record = models[target]
        assert point["accuracy_gap"] == pytest.approx(record["train_accuracy"] - record["test_accuracy"])
        assert point["learning_rate"] == pytest.approx(strengths[target]) and point["epochs"] == 2
        assert point["nonmembers"] == (~keep[target]).sum()
    tpr = [point["tpr_at_0.1%_fpr"] for point in data["targets"]]
    loss_gap = [point["loss_gap"] for point in data["targets"]]
    found = data["correlations"]["tpr_at_0.1%_fpr vs loss_gap"]
    assert found["pearson"] == pytest.approx(np.corrcoef(tpr, loss_gap)[0, 1])
    assert found["spearman"] == pytest.approx(stats.spearmanr(tpr, loss_gap).statistic) and found["spearman"] > 0.5
    assert "zero false positives" in data["resolution"]
    assert (tmp_path / "out" / "gap.png").stat().st_size > 10_000


def test_gap_pools_the_targets_of_several_runs(runs, tmp_path):
    pooled = run_study("gap", [runs["signal"], runs["null"]], tmp_path / "out", targets="0,1")
    assert [(Path(point["run"]).name, point["model"]) for point in pooled["targets"]] == [
        ("signal", 0),
        ("signal", 1),
        ("null", 0),
        ("null", 1),
    ]
    alone = run_study("gap", [runs["null"]], tmp_path / "alone", targets="0,1")
    assert alone["targets"] == pooled["targets"][2:]


def test_shadow_counts_full_count_equals_the_attack(runs, tmp_path):
    data = run_study("shadows", [runs["signal"]], tmp_path / "out")
    assert [row["count"] for row in data["counts"]] == [1, 2, 4, 7]
    expected = run_attack(
        runs["signal"], json_path=tmp_path / "m.json", plot_path=tmp_path / "r.png", print_table=False
    )
    full = data["counts"][-1]["attacks"]
    for name, entry in full.items():
        assert entry["coverage"] == 1.0
        assert entry["metrics"]["auc"] == pytest.approx(expected["attacks"][name]["auc"], abs=1e-12), name
        assert entry["metrics"]["tpr_at_fpr"] == expected["attacks"][name]["tpr_at_fpr"], name
    one = data["counts"][0]["attacks"]
    assert one["lira_online"] == {"coverage": 0.0, "metrics": None}  # one shadow is never both IN and OUT
    assert 0.4 < one["lira_offline"]["coverage"] < 0.6 and one["lira_offline_fixed_var"]["metrics"]["auc"] > 0.6
    again = run_study("shadows", [runs["signal"]], tmp_path / "again", counts=[2], seed=0)
    assert again["counts"][0] == data["counts"][1]  # seeded
    assert (tmp_path / "out" / "shadows.png").stat().st_size > 10_000


def test_shadow_counts_null_control(tmp_path):
    run = make_run(tmp_path / "null", num_models=12, num_examples=600, signal=0.0, seed=3, balanced=False)
    data = run_study("shadows", [run], tmp_path / "out", targets="0:4")
    for row in data["counts"]:
        for name in (
            "lira_offline",
            "lira_offline_fixed_var",
            "lira_online_fixed_var",
            "bavaria_n",
            "rmia_online",
            "base",
        ):
            metrics = row["attacks"][name]["metrics"]
            assert metrics is None or abs(metrics["auc"] - 0.5) < 0.06, (row["count"], name, metrics["auc"])


def test_shadow_counts_choice():
    assert shadow_counts(64, None) == [1, 2, 4, 8, 16, 32, 63]
    assert shadow_counts(3, None) == [1, 2]
    assert shadow_counts(9, [8, 3, 3]) == [3, 8]


def test_violins_against_plain_recomputation(runs, tmp_path):
    run = runs["signal"]
    data = run_study("violins", [run], tmp_path / "out")
    keep, labels = np.load(run / "keep.npy"), np.load(run / "labels.npy")
    logits, scores = np.load(run / "logits.npy"), np.load(run / "scores.npy")
    correct = logits[:, :, 0].argmax(axis=-1) == labels
    for (member, right), name in {
        (True, True): "member, correct",
        (False, True): "non-member, correct",
        (True, False): "member, wrong",
        (False, False): "non-member, wrong",
    }.items():
        values = scores[:, :, 0][(keep == member) & (correct == right)]
        assert data["groups"][name]["count"] == len(values)
        assert data["groups"][name]["quartiles"] == pytest.approx(np.percentile(values, [25, 50, 75]).tolist())
    attacks = ["lira_online", "global_threshold", "correctness"]
    direct = score_attacks(scores, keep, None, attacks, logits=logits, labels=labels)
    for name in attacks:
        assert data["attacks"][name]["all"] == attack_metrics(keep, direct[name])
        assert data["attacks"][name]["correct_only"] == attack_metrics(keep[correct], direct[name][correct])
    assert data["attacks"]["correctness"]["correct_only"]["auc"] == 0.5  # all predicted right: no signal left
    assert (tmp_path / "out" / "violins.png").stat().st_size > 10_000


def test_command_line_default_folder_in_a_subprocess(runs, tmp_path):
    run = tmp_path / "run"
    subprocess.run(["cp", "-r", str(runs["signal"]), str(run)], check=True)
    done = subprocess.run(
        [sys.executable, "-m", "lira_jax.study", "violins", str(run), "--targets", "last"],
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
    )
    assert done.returncode == 0, done.stderr
    assert "TPR@0.1% correct" in done.stdout
    assert sorted(path.name for path in (run / "study-violins").iterdir()) == [
        "violins.json",
        "violins.md",
        "violins.png",
    ]


def _other_data(root: Path) -> Path:
    run = make_run(root / "other", seed=5)
    labels = (np.load(run / "labels.npy") + 1) % 5
    np.save(run / "labels.npy", labels)
    np.save(run / "scores.npy", logit_scale(np.load(run / "logits.npy"), labels))  # φ of the logits again
    return run


def _keep_no_logits(run: Path) -> None:
    """The run as trained with query.logits_dtype = "none": no logits.npy, and its config says so."""
    (run / "logits.npy").unlink()
    config = config_lib.load(run / "config.toml")
    config = dataclasses.replace(config, query=dataclasses.replace(config.query, logits_dtype="none"))
    (run / "config.toml").write_text(config_lib.to_toml(config))


def _without_logits(root: Path) -> Path:
    run = make_run(root / "nologits")
    _keep_no_logits(run)
    return run


def _without_accuracies(root: Path) -> Path:
    """Records with no accuracies in a folder not trained here (a trained run's are refused by load_run)."""
    run = make_run(root / "noacc")
    (run / "models.json").write_text(json.dumps({"models": [{"done": True}] * 8}))
    (run / "config.toml").unlink()
    return run


BAD = {  # message (a regular expression) -> arguments, given the good run folder and a scratch folder
    r"is not a directory": lambda run, root: ["gap", str(root / "missing")],
    r"keep\.npy is missing": lambda run, root: ["gap", str(root)],
    r"unknown study 'vibes'": lambda run, root: ["vibes", str(run)],
    r"the shadows study takes one run folder, got 2": lambda run, root: ["shadows", str(run), str(run)],
    r"holds a different data set": lambda run, root: ["defences", str(run), str(_other_data(root))],
    r"defences study got the same run folder twice": lambda run, root: ["defences", str(run), str(run)],
    r"--counts must lie in \[1, 7\]": lambda run, root: ["shadows", str(run), "--counts", "1,8"],
    r"--counts must be I,J": lambda run, root: ["shadows", str(run), "--counts", "two"],
    r"needs at least 3 finished models, got 2": lambda run, root: [
        "shadows",
        str(make_run(root / "two", num_models=2, num_examples=40)),
    ],
    r"no logits\.npy: telling correct": lambda run, root: ["violins", str(_without_logits(root))],
    r"must give train_accuracy": lambda run, root: ["gap", str(_without_accuracies(root))],
    r"--targets must be": lambda run, root: ["gap", str(run), "--targets", "x"],
}


@pytest.mark.parametrize("message", list(BAD))
def test_bad_input_exits_2_with_one_line_and_writes_nothing(runs, tmp_path, capsys, message):
    arguments = BAD[message](runs["signal"], tmp_path)
    before = sorted(str(path) for path in tmp_path.rglob("*"))
    signal_before = sorted(path.name for path in runs["signal"].iterdir())
    assert main([*arguments, "--out", str(tmp_path / "out")]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and captured.out == "", captured.err
    assert re.search(message, lines[0]), lines[0]
    assert sorted(str(path) for path in tmp_path.rglob("*")) == before
    assert sorted(path.name for path in runs["signal"].iterdir()) == signal_before


def test_out_that_is_a_file(runs, tmp_path, capsys):
    (tmp_path / "taken").write_text("")
    assert main(["gap", str(runs["signal"]), "--out", str(tmp_path / "taken")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_the_identity_view_is_found_by_name(tmp_path, capsys):
    """Two query views, identity second (as config.toml lists them): φ and correctness are read from view 1."""
    run = make_run(tmp_path / "run", num_views=2, views=("mirror", "identity"))
    keep, labels = np.load(run / "keep.npy"), np.load(run / "labels.npy")
    correct = np.load(run / "logits.npy")[:, :, 1].argmax(axis=-1) == labels
    phi = np.load(run / "scores.npy")[:, :, 1].astype(np.float64)
    violins = run_study("violins", [run], tmp_path / "out")
    assert violins["groups"]["member, correct"]["count"] == (correct & keep).sum()
    gap = run_study("gap", [run], tmp_path / "out", targets="0")
    loss = np.log1p(np.exp(-phi[0]))
    assert gap["targets"][0]["loss_gap"] == pytest.approx(loss[~keep[0]].mean() - loss[keep[0]].mean())
    (run / "config.toml").unlink()  # without a config, only a single view is taken for the identity
    assert main(["violins", str(run), "--out", str(tmp_path / "none")]) == 2
    assert "has no identity query view" in capsys.readouterr().err and not (tmp_path / "none").exists()
