"""lira_jax.attack and audit.evaluate: the CLI and run_attack on synthetic run folders, with and without signal."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import HANG_GUARD_S
from run_folders import write_run

from lira_jax.attack import main
from lira_jax.audit.attacks.classifiers import classifier_scores
from lira_jax.audit.evaluate import run_attack
from lira_jax.audit.inputs.masking import mask_logits, parse_mask
from lira_jax.audit.inputs.phi import logit_scale
from lira_jax.audit.inputs.targets import parse_targets
from lira_jax.audit.metrics import attack_metrics, decision_metrics
from lira_jax.audit.registry import ATTACKS, LABEL_BLIND, score_attacks
from lira_jax.errors import UserError


def test_attack_finds_the_signal(tmp_path, capsys):
    run = write_run(tmp_path / "run")
    assert main([str(run), "--classifier-rows", "300"]) == 0
    table = capsys.readouterr().out
    assert "lira_online" in table and "TPR@0.1%" in table
    metrics = json.loads((run / "metrics.json").read_text())
    assert (run / "roc.png").stat().st_size > 10_000
    assert metrics["num_models"] == 12 and metrics["num_examples"] == 300 and metrics["num_views"] == 2
    assert metrics["targets"] == list(range(12))
    # logits.npy is there: every attack runs but data transfer, which needs --shadow-run
    assert list(metrics["attacks"]) == [name for name in ATTACKS if name != "ml_leaks_adv2"]
    for name, values in metrics["attacks"].items():
        assert set(values["tpr_at_fpr"]) == {"0.01", "0.001", "0.0001", "1e-05"}
        assert values["tpr_at_fpr"]["1e-05"] is None  # 1,800 non-members: not measurable
        assert 0.55 < values["auc"] < 1, name
    offline = metrics["attacks"]["lira_offline"]
    assert offline["auc"] > 0.8 and offline["tpr_at_fpr"]["0.01"] > 0.1
    assert offline["tpr_at_fpr"]["0.01"] > metrics["attacks"]["global_threshold"]["tpr_at_fpr"]["0.01"]
    assert offline["epsilon_lower_bound"]["epsilon"] > 1


def test_null_control_every_attack_is_at_chance(tmp_path):
    """keep independent of the scores: AUC near 0.5, and TPR near FPR within the intervals.

    One target, so that its (example, score) pairs are independent and the binomial intervals hold
    (pooling targets counts each example several times). keep is drawn independently per model and M
    is large enough that no example comes near having no shadow on one side: both make the set sizes
    a member target sees distributed like a non-member's. (With exactly half of the models per
    example, taking the target out makes its own set one model smaller, which online LiRA's variance
    estimates notice at small M: see the next test.)
    """
    run = write_run(tmp_path / "null", num_models=32, num_examples=5000, signal=0.0, seed=1, balanced=False)
    metrics = run_attack(run, "last", classifier_rows=600, print_table=False)
    for name, values in metrics["attacks"].items():
        members, nonmembers = values["num_members"], values["num_nonmembers"]
        auc_spread = np.sqrt((members + nonmembers + 1) / (12 * members * nonmembers))
        assert abs(values["auc"] - 0.5) < 4.5 * auc_spread, name
        assert abs(values["balanced_accuracy"] - 0.5) < 0.05, name
        for alpha in ("0.01", "0.001"):
            point = values["at_fpr"][alpha]
            (tpr_low, tpr_high), (fpr_low, fpr_high) = point["tpr_interval"], point["fpr_interval"]
            assert tpr_low <= fpr_high and fpr_low <= tpr_high, (name, alpha, point)
            assert point["fpr"] <= float(alpha)


def test_balanced_keep_leaks_set_sizes_at_small_m_with_raw_counts(tmp_path):
    """Why counts are equalised by default: with every example in exactly M/2 models, a member target
    leaves M/2 − 1 IN and M/2 OUT shadows and a non-member the reverse. The smaller set's spread is
    underestimated, so under the null online LiRA on raw counts scores members lower (fading as 1/M);
    equalised counts remove that (tests/test_null_controls.py)."""
    run = write_run(tmp_path / "m16", num_models=16, num_examples=600, signal=0.0, seed=1)
    raw = run_attack(run, attacks=["lira_online"], lira_counts="raw", print_table=False)
    equalised = run_attack(run, attacks=["lira_online"], print_table=False)
    assert raw["attacks"]["lira_online"]["auc"] < 0.48 < equalised["attacks"]["lira_online"]["auc"]
    assert raw["options"]["lira_counts"] == "raw" and equalised["options"]["lira_counts"] == "equalised"


def test_targets_subsets_and_unfinished_models(tmp_path):
    done = [True] * 10
    done[3] = done[7] = False
    run = write_run(tmp_path / "partial", num_models=10, num_examples=120, done=done)
    scores = np.load(run / "scores.npy")
    scores[[3, 7]] = np.nan  # rows of unfinished models are never read
    np.save(run / "scores.npy", scores)
    attacks = ["lira_online", "lira_offline_fixed_var", "rmia_offline", "calibrated_loss", "entropy"]
    metrics = run_attack(run, "last", attacks=attacks, print_table=False)
    assert metrics["targets"] == [9] and metrics["num_models"] == 8 and metrics["models"] == [0, 1, 2, 4, 5, 6, 8, 9]
    used = [0, 1, 2, 4, 5, 6, 8, 9]
    keep = np.load(run / "keep.npy")[used]
    logits = np.load(run / "logits.npy")[used]
    direct = score_attacks(scores[used], keep, [7], attacks, logits=logits, labels=np.load(run / "labels.npy"))
    for name in attacks:
        assert metrics["attacks"][name]["auc"] == pytest.approx(attack_metrics(keep[[7]], direct[name])["auc"])
    assert parse_targets("all", used) == used
    assert parse_targets("0,2", used) == [0, 2]
    assert parse_targets("4:7", used) == [4, 5, 6]
    with pytest.raises(UserError, match="not usable: \\[3\\]"):
        parse_targets("2:5", used)


def test_distributions_plot(tmp_path):
    run = write_run(tmp_path / "run", num_examples=80)
    run_attack(
        run, "0", attacks=["lira_online"], distributions_path=tmp_path / "hist.png", examples=[1, 5], print_table=False
    )
    assert (tmp_path / "hist.png").stat().st_size > 5_000


def _save(run: Path, name: str, change) -> None:
    """Rewrites run/name.npy as change(its array)."""
    np.save(run / f"{name}.npy", change(np.load(run / f"{name}.npy")))


def _scores_only(run: Path, change) -> None:
    """Rewrites scores.npy as change(its array) and removes logits.npy: φ is then read from scores.npy (beside
    logits.npy, a folder not trained here has φ computed from the logits, its scores.npy not read)."""
    _save(run, "scores", change)
    (run / "logits.npy").unlink()


def _nan_at(scores: np.ndarray) -> np.ndarray:
    scores[2, 17, 1] = np.nan
    return scores


def _only_model_0_has(keep: np.ndarray) -> np.ndarray:
    keep[:, 5] = False
    keep[0, 5] = True
    return keep


def _models_json(records) -> str:
    return json.dumps({"models": records})


BAD_RUNS = {  # expected message (a regular expression) -> how to break a good run folder
    r"scores\.npy is missing": lambda run: [(run / f"{name}.npy").unlink() for name in ("scores", "logits")],
    r"scores\.npy must be float32 .* got float64": lambda run: _scores_only(run, lambda a: a.astype(float)),
    r"scores\.npy must be .* \[M, N\] = \[6, 60\] from keep\.npy": lambda run: _scores_only(run, lambda a: a[:, 1:]),
    r"keep\.npy must be bool or 0/1 integers": lambda run: _save(run, "keep", lambda a: a.astype(np.int8) * 2),
    r"labels\.npy must be integers": lambda run: _save(run, "labels", lambda a: a.astype(float)),
    r"logits\.npy must be float16, float32 or float64": lambda run: _save(run, "logits", lambda a: a.astype(int)),
    r"scores holds NaN or infinite values \(nan at model 2, example 17\)": lambda run: _scores_only(run, _nan_at),
    r"at least 2 finished models .* 1 of 6 done": lambda run: (run / "models.json").write_text(
        _models_json([{"done": index == 0} for index in range(6)])
    ),
    r"models\.json is not a JSON object": lambda run: (run / "models.json").write_text("{not json"),
    r"must list 6 models": lambda run: (run / "models.json").write_text(_models_json([{"done": True}])),
    r"keep\.npy is not a \.npy file": lambda run: (run / "keep.npy").write_bytes(b"garbage"),
}


def test_too_few_shadows_make_lira_not_applicable(tmp_path, capsys):
    """Example 5 is IN only model 0: online LiRA has no IN set there, so it is n/a (null metrics with the
    reason, n/a on the table, not on the plot) while the other attacks are scored."""
    run = write_run(tmp_path / "run", num_models=6, num_examples=60, done=[True] * 6)
    _save(run, "keep", _only_model_0_has)
    assert main([str(run), "--attacks", "lira_online,lira_offline_fixed_var,global_threshold"]) == 0
    table = capsys.readouterr().out
    assert "lira_online                 n/a (needs ≥ 2 IN and 2 OUT shadows per example)" in table
    text = (run / "metrics.json").read_text()
    metrics = json.loads(text, parse_constant=lambda name: pytest.fail(f"not strict JSON: {name}"))
    online = metrics["attacks"]["lira_online"]
    assert online["auc"] is None and online["not_applicable"] == "needs ≥ 2 IN and 2 OUT shadows per example"
    assert set(online["tpr_at_fpr"].values()) == {None}
    assert metrics["attacks"]["global_threshold"]["auc"] > 0.5


@pytest.mark.parametrize("message", list(BAD_RUNS))
def test_bad_run_folders_exit_2_and_write_nothing(tmp_path, capsys, message):
    run = write_run(tmp_path / "run", num_models=6, num_examples=60, done=[True] * 6)
    BAD_RUNS[message](run)
    before = sorted(path.name for path in run.iterdir())
    assert main([str(run), "--attacks", "lira_online,global_threshold"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert re.search(message, lines[0]), lines[0]
    assert sorted(path.name for path in run.iterdir()) == before


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--targets", "9"], "must name distinct finished models"),
        (["--targets", "one"], "--targets must be"),
        (["--attacks", "lira_online,vibes"], "--attacks takes names"),
        (["--json", "/nonexistent/dir/m.json"], "is not a directory"),
        (["--no-such-flag"], "unrecognized arguments"),
    ],
)
def test_bad_arguments_exit_2(tmp_path, capsys, arguments, message):
    run = write_run(tmp_path / "run", num_models=4, num_examples=20, logits=False)
    assert main([str(run), *arguments]) == 2
    assert message in capsys.readouterr().err
    assert not (run / "metrics.json").exists()


def test_logit_attacks_without_logits(tmp_path, capsys):
    run = write_run(tmp_path / "run", num_models=4, num_examples=20, logits=False)
    assert main([str(run), "--attacks", "entropy"]) == 2
    assert "entropy need logits" in capsys.readouterr().err
    metrics = run_attack(run, print_table=False)  # the default attacks leave them out
    assert "entropy" not in metrics["attacks"] and "rmia_online" in metrics["attacks"]


def test_command_line_in_a_subprocess(tmp_path):
    run = write_run(tmp_path / "run", num_models=4, num_examples=40, logits=False)
    command = [
        sys.executable,
        "-m",
        "lira_jax.attack",
        str(run),
        "--targets",
        "last",
        "--attacks",
        "lira_online,lira_offline,global_threshold",
        "--json",
        str(tmp_path / "m.json"),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "m.json").read_text())["targets"] == [3]
    # stderr is a pipe: one plain line per attack family, no redraws; stdout says where every output went
    assert "\r" not in done.stderr
    assert [line.split(" scored in ")[0] for line in done.stderr.splitlines()] == [
        "attacks: lira_online, lira_offline",
        "attacks: global_threshold",
    ]
    written = done.stdout.split("\nwritten:\n")[1].splitlines()
    assert [line.split()[-1] for line in written] == [
        str(tmp_path / "m.json"),
        str(run / "roc.png"),
        *(str(tmp_path / name) for name in ("examples.csv", "metrics.csv", "report.html")),  # beside --json
    ]
    (run / "labels.npy").unlink()
    failed = subprocess.run(command, capture_output=True, text=True, timeout=HANG_GUARD_S)
    assert failed.returncode == 2
    assert failed.stderr.strip().count("\n") == 0 and "Traceback" not in failed.stderr
    assert "labels.npy is missing" in failed.stderr


# ---------------------------------------------------------------------------------------------------
# Output masking, the correctness rule, the attack classifiers, epoch snapshots


def _tree(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


@pytest.mark.parametrize("spec", ["top:1", "round:1"])
def test_mask_applies_before_every_attack(tmp_path, spec):
    run = write_run(tmp_path / "run", num_models=6, num_examples=120)
    attacks = ["lira_online", "rmia_online", "global_threshold", "calibrated_loss", "entropy", "modified_entropy"]
    metrics = run_attack(run, attacks=attacks, mask=spec, print_table=False)
    assert metrics["mask"] == {"spec": spec, "floor": None if spec == "top:1" else 0.1 / 10}
    keep, labels = np.load(run / "keep.npy"), np.load(run / "labels.npy")
    masked = mask_logits(np.load(run / "logits.npy"), parse_mask(spec))
    direct = score_attacks(logit_scale(masked, labels), keep, None, attacks, logits=masked, labels=labels)
    plain = run_attack(run, attacks=attacks, print_table=False)
    for name in attacks:
        expected = attack_metrics(keep, direct[name])
        assert metrics["attacks"][name]["auc"] == pytest.approx(expected["auc"], abs=1e-12), name
        assert metrics["attacks"][name]["tpr_at_fpr"] == pytest.approx(expected["tpr_at_fpr"]), name
    assert metrics["attacks"]["global_threshold"]["auc"] != plain["attacks"]["global_threshold"]["auc"]


def test_label_only_mask_reduces_every_attack_to_correctness(tmp_path, capsys):
    run = write_run(tmp_path / "run", num_models=6, num_examples=120)
    metrics = run_attack(run, mask="label")
    assert "label only" in capsys.readouterr().out
    assert metrics["mask"]["left_out"] == list(LABEL_BLIND) and "correctness" in metrics["mask"]["note"]
    assert not set(LABEL_BLIND) & set(metrics["attacks"])
    correctness = metrics["attacks"]["correctness"]["auc"]
    for name in ("global_threshold", "loss", "modified_entropy"):  # monotone in the views labelled right
        assert metrics["attacks"][name]["auc"] == pytest.approx(correctness, abs=1e-12), name
    assert main([str(run), "--mask", "label", "--attacks", "global_threshold,confidence"]) == 2
    assert "confidence would score every example the same" in capsys.readouterr().err


def test_correctness_rule_agrees_with_the_gap(tmp_path, capsys):
    run = write_run(tmp_path / "run", num_models=6, num_examples=120, num_views=1)
    metrics = run_attack(run, attacks=["global_threshold"])
    assert "correctness rule" in capsys.readouterr().out
    rule = metrics["correctness_rule"]
    keep, labels, logits = np.load(run / "keep.npy"), np.load(run / "labels.npy"), np.load(run / "logits.npy")
    correct = logits[:, :, 0].argmax(axis=-1) == labels
    train = np.mean([correct[m][keep[m]].mean() for m in range(6)])
    test = np.mean([correct[m][~keep[m]].mean() for m in range(6)])
    assert rule["train_accuracy"] == pytest.approx(train) and rule["test_accuracy"] == pytest.approx(test)
    assert rule["gap_accuracy"] == pytest.approx((1 + train - test) / 2)
    pooled_train, pooled_test = correct[keep].mean(), correct[~keep].mean()
    assert rule["balanced_accuracy"] == pytest.approx((1 + pooled_train - pooled_test) / 2, abs=1e-12)
    assert not rule["balanced_counts"] and abs(rule["accuracy"] - rule["gap_accuracy"]) < 0.02
    # every model trains on exactly half of the examples: the rule's accuracy is (1 + gap) / 2 exactly
    np.save(run / "keep.npy", (np.arange(6)[:, None] + np.arange(120)[None, :]) % 2 == 0)
    rule = run_attack(run, attacks=["global_threshold"], print_table=False)["correctness_rule"]
    assert rule["balanced_counts"]
    assert rule["accuracy"] == pytest.approx(rule["gap_accuracy"], abs=1e-12)
    assert rule["balanced_accuracy"] == pytest.approx(rule["gap_accuracy"], abs=1e-12)


def test_attack_classifiers_in_the_report(tmp_path, capsys):
    run = write_run(tmp_path / "run", num_models=6, num_examples=200)
    metrics = run_attack(run, attacks=["ml_leaks_adv1", "confidence", "entropy"], classifier_rows=200)
    table = capsys.readouterr().out
    assert "ml_leaks_adv1 (p > 0.5)" in table and "ML-Leaks adversary 3" in table
    entry = metrics["attacks"]["ml_leaks_adv1"]
    assert entry["auc"] > 0.6 and set(entry["tpr_at_fpr"]) == {"0.01", "0.001", "0.0001", "1e-05"}
    keep, labels = np.load(run / "keep.npy"), np.load(run / "labels.npy")
    scores = classifier_scores(np.load(run / "logits.npy"), keep, labels, None, ["ml_leaks_adv1"], max_rows=200)
    decided = decision_metrics(keep, scores["ml_leaks_adv1"] > 0)
    assert entry["at_decision_threshold"] == {"member_probability_above": 0.5, **decided}
    assert metrics["classifiers"]["ml_leaks_adversary_3"] == ["confidence", "entropy"]
    assert metrics["classifiers"]["model_folds"] == 2 and metrics["classifiers"]["max_rows"] == 200


def test_shadow_run_from_another_data_set(tmp_path):
    run = write_run(tmp_path / "run", num_models=4, num_examples=200)
    other = write_run(tmp_path / "other", num_models=2, num_examples=300, num_classes=8, num_views=1, seed=5)
    metrics = run_attack(run, attacks=["ml_leaks_adv2"], shadow_run=other, classifier_rows=300, print_table=False)
    assert metrics["attacks"]["ml_leaks_adv2"]["auc"] > 0.6
    assert metrics["classifiers"]["shadow_run"] == str(other)


def test_epoch_snapshot(tmp_path, capsys):
    run = write_run(tmp_path / "run", num_models=6, num_examples=120)
    early = write_run(tmp_path / "early", num_models=6, num_examples=120, signal=0.4)  # same keep and labels
    (run / "epochs" / "2").mkdir(parents=True)
    for name in ("scores.npy", "logits.npy"):
        (run / "epochs" / "2" / name).write_bytes((early / name).read_bytes())
    attacks = ["lira_online", "entropy"]
    metrics = run_attack(run, attacks=attacks, epoch=2, print_table=False)
    assert metrics["epoch"] == 2
    assert (run / "epochs" / "2" / "metrics.json").is_file() and (run / "epochs" / "2" / "roc.png").is_file()
    assert not (run / "metrics.json").exists()
    expected = run_attack(early, attacks=attacks, print_table=False)
    assert metrics["attacks"] == expected["attacks"]
    before = _tree(run)
    assert main([str(run), "--epoch", "5", "--attacks", "lira_online"]) == 2
    error = capsys.readouterr().err
    assert "epoch 5 was not saved in" in error and "saved epochs: 2" in error
    assert _tree(run) == before


BAD_MASKS_AND_SOURCES = {  # message -> (arguments, whether the run has logits)
    "--mask must be top:K": (["--mask", "top:0"], True),
    "--mask must be top:K (K >= 1)": (["--mask", "round:-1"], True),
    "got 'blur'": (["--mask", "blur"], True),
    "more classes than the models output (5)": (["--mask", "top:6"], True),
    "under --mask label every output is a one-hot vector": (["--mask", "label", "--attacks", "entropy"], True),
    "masks the logits, but": (["--mask", "top:1"], False),
    "shokri need logits": (["--attacks", "shokri"], False),
    "ml_leaks_adv2 (data transfer) needs --shadow-run": (["--attacks", "ml_leaks_adv2"], True),
    "is not a usable run folder": (["--shadow-run", "{tmp}/nowhere"], True),
    "must be another run folder": (["--shadow-run", "{run}"], True),
    "has no logits.npy, which the attack model is trained on": (["--shadow-run", "{tmp}/bare"], True),
    "epoch 3 was not saved": (["--epoch", "3"], True),
    "saved epochs: none": (["--epoch", "1"], True),
}


@pytest.mark.parametrize("message", list(BAD_MASKS_AND_SOURCES))
def test_bad_masks_epochs_and_shadow_runs_exit_2(tmp_path, capsys, message):
    arguments, logits = BAD_MASKS_AND_SOURCES[message]
    run = write_run(tmp_path / "run", num_models=4, num_examples=40, logits=logits)
    write_run(tmp_path / "bare", num_models=2, num_examples=30, logits=False)
    if message == "epoch 3 was not saved":
        (run / "epochs" / "2").mkdir(parents=True)
    arguments = [argument.format(tmp=tmp_path, run=run) for argument in arguments]
    before = _tree(tmp_path)
    assert main([str(run), *arguments]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert _tree(tmp_path) == before
