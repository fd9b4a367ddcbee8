"""Degenerate keep matrices (issue 25): a target without members or non-members is named before any attack
is scored, on every input path; a shadow set too small for an attack makes that attack not applicable,
with its reason in metrics.json, never a number and never an error for the whole audit."""

import json

import numpy as np
import pytest
from hostile import M, fails_cleanly, make_input, resave, skip_drawing

from lira_jax import attack, audit_logits
from lira_jax.audit.attacks.baselines import baseline_scores
from lira_jax.audit.attacks.classifiers import classifier_scores
from lira_jax.audit.attacks.lira.lira import lira_scores
from lira_jax.audit.attacks.rmia import rmia
from lira_jax.audit.inputs.checked import NotApplicable
from lira_jax.audit.registry import score_attacks
from lira_jax.errors import UserError

OUT_REASON = "needs ≥ 1 OUT shadow per example besides each target (after equalised counts)"


def small_run(num_models=6, num_examples=40, seed=0):
    rng = np.random.default_rng(seed)
    keep = np.argsort(rng.random((num_models, num_examples)), axis=0) < num_models // 2
    labels = rng.integers(0, 3, num_examples)
    logits = rng.normal(size=(num_models, num_examples, 1, 3)).astype(np.float32)
    return logits, keep, labels


@pytest.mark.parametrize("row, what", [(True, "every example"), (False, "no example")])
def test_the_api_names_a_target_without_members_or_non_members_before_scoring(row, what, capsys):
    logits, keep, labels = small_run()
    keep[2] = row
    with pytest.raises(UserError, match=rf"^target model 2 trained on {what} \(its keep row is all {row}\)"):
        audit_logits(logits, keep, labels)
    assert "scored" not in capsys.readouterr().err  # refused before the first attack


def test_the_message_counts_the_other_targets_alike():
    logits, keep, labels = small_run()
    keep[1], keep[4] = False, True
    with pytest.raises(UserError, match=r"target model 1 trained on no example .*; 1 more target\(s\) alike"):
        audit_logits(logits, keep, labels)


def test_a_shadow_that_is_no_target_may_train_on_everything():
    logits, keep, labels = small_run()
    keep[0] = True
    metrics = audit_logits(logits, keep, labels, targets=[1, 2, 3], attacks=["rmia_online", "loss"]).metrics
    assert all(0 <= entry["auc"] <= 1 for entry in metrics["attacks"].values())


def test_an_example_in_no_model_is_ordinary():
    logits, keep, labels = small_run()
    keep[:, 5] = False
    metrics = audit_logits(logits, keep, labels, attacks=["rmia_online", "rmia_offline", "global_threshold"]).metrics
    assert all(0 <= entry["auc"] <= 1 for entry in metrics["attacks"].values())


@pytest.mark.parametrize("row", [True, False])
@pytest.mark.parametrize("layout", ["run", "plain", "reference", "port"])
def test_every_input_layout_names_the_model_before_scoring(layout, row, tmp_path, capsys, monkeypatch):
    skip_drawing(monkeypatch)
    root, arguments = make_input(tmp_path, layout)
    keep_file = {
        "run": root / "keep.npy",
        "plain": root / "keep.npy",
        "reference": root / f"experiment-3_{M}" / "keep.npy",
        "port": root / "3" / "keep.npy",
    }[layout]
    resave(keep_file, lambda keep: np.full_like(keep, row) if keep.ndim == 1 else _with_row(keep, 3, row))
    if layout == "run":  # the record agrees with keep.npy, as a run trained on that row would (store's promise)
        records = json.loads((root / "models.json").read_text())
        records["models"][3]["members"] = int(np.load(keep_file)[3].sum())
        (root / "models.json").write_text(json.dumps(records))
    written = sorted(path.name for path in tmp_path.rglob("*"))
    fails_cleanly(attack.main, arguments, r"^error: target model 3 trained on (every|no) example", capsys)
    assert sorted(path.name for path in tmp_path.rglob("*")) == written  # nothing written


def _with_row(keep: np.ndarray, model: int, value: bool) -> np.ndarray:
    keep = keep.copy()
    keep[model] = value
    return keep


def test_an_example_in_every_model_leaves_the_out_set_attacks_not_applicable():
    """Example 0 in every model: no OUT shadow for it. Offline RMIA and calibrated_loss are n/a (before
    issue 25 the whole audit was refused); the attacks that need no OUT set still score."""
    logits, keep, labels = small_run()
    keep[:, 0] = True
    metrics = audit_logits(logits, keep, labels, attacks=["rmia_offline", "calibrated_loss", "rmia_online"]).metrics
    for name in ("rmia_offline", "calibrated_loss"):
        assert metrics["attacks"][name]["auc"] is None and metrics["attacks"][name]["not_applicable"] == OUT_REASON
    assert 0 <= metrics["attacks"]["rmia_online"]["auc"] <= 1


def test_one_out_shadow_equalised_away_leaves_offline_rmia_not_applicable():
    """Two models, an example in neither: for either target one OUT shadow and no IN shadow, so the
    equalised OUT set drops it and holds none."""
    logits, keep, labels = small_run(num_models=2)
    keep[:, 7] = False
    scores = score_attacks(logits[..., 0], keep, None, ["rmia_offline", "calibrated_loss", "rmia_online"])
    assert scores["rmia_offline"] == scores["calibrated_loss"] == NotApplicable(OUT_REASON)
    assert scores["rmia_online"].shape == (2, 40)


def test_the_public_functions_refuse_what_the_registry_reports_not_applicable():
    logits, keep, labels = small_run()
    keep[:, 0] = True
    scores = logits[..., 0]
    with pytest.raises(UserError, match=r"^offline RMIA needs ≥ 1 OUT shadow per example"):
        rmia(scores, keep, online=False)
    with pytest.raises(UserError, match=r"^calibrated_loss needs ≥ 1 OUT shadow per example"):
        baseline_scores(scores, keep, names=["calibrated_loss"])


def test_a_population_of_one_non_member_leaves_rmia_not_applicable():
    logits, keep, labels = small_run()
    population = np.flatnonzero(~keep[0])[:1]  # target 0 did not train on it; every other target may have
    scores = score_attacks(logits[..., 0], keep, [0], ["rmia_online", "rmia_offline"], population=population)
    reason = "needs ≥ 2 population examples outside each target's training set"
    assert scores == {"rmia_online": NotApplicable(reason), "rmia_offline": NotApplicable(reason)}
    with pytest.raises(UserError, match=f"online RMIA {reason}"):
        rmia(logits[..., 0], keep, [0], population=population)


def test_fixed_sigma_is_taken_over_the_sets_of_two_shadows_only():
    """Raw counts at 5 models: each example has sets of 2 and 2, or of 1 and 3; a set of one adds no
    variance of 0 to the fixed σ (online LiRA with a fixed σ equals a σ from the sets of 2 alone)."""
    rng = np.random.default_rng(2)
    keep = np.argsort(rng.random((5, 60)), axis=0) < 3  # 3 IN, 2 OUT per example
    scores = rng.normal(size=(5, 60, 1)).astype(np.float32)
    result = score_attacks(scores, keep, None, ["lira_offline_fixed_var", "lira_online_fixed_var"], lira_counts="raw")
    for values in result.values():
        assert not isinstance(values, NotApplicable) and np.isfinite(values).all()
    offline = lira_scores(scores, keep, [0], ["lira_offline_fixed_var"], counts="raw")["lira_offline_fixed_var"][0]
    outs = [[m for m in range(1, 5) if not keep[m, n]] for n in range(60)]
    usable = [n for n in range(60) if len(outs[n]) >= 2]
    sigma = np.sqrt(np.mean([np.var(scores[outs[n], n, 0].astype(np.float64)) for n in usable]))
    medians = np.array([np.median(scores[outs[n], n, 0].astype(np.float64)) for n in range(60)])
    from scipy.stats import norm

    np.testing.assert_allclose(offline, norm.logcdf((scores[0, :, 0] - medians) / sigma), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("counts", ["equalised", "raw"])
def test_fixed_sigma_with_no_set_of_two_is_not_applicable(counts):
    """3 models, each example in one: equalised, every OUT set holds one shadow, so offline fixed-variance
    LiRA is n/a (it was σ = 1e-6 and a number); raw, a member's OUT set holds 2 and gives σ its spread."""
    rng = np.random.default_rng(4)
    keep = np.argsort(rng.random((3, 30)), axis=0) < 1
    scores = rng.normal(size=(3, 30, 2)).astype(np.float32)
    result = score_attacks(scores, keep, None, ["lira_offline_fixed_var", "global_threshold"], lira_counts=counts)
    if counts == "equalised":
        reason = "its fixed σ needs, for each target, an example with ≥ 2 OUT shadows (a set of 1 has no spread)"
        assert result["lira_offline_fixed_var"] == NotApplicable(reason)
    else:
        assert np.isfinite(result["lira_offline_fixed_var"]).all()
    assert result["global_threshold"].shape == (3, 30)


def test_the_reference_fixed_sigma_pools_values_across_examples():
    """plot.py's fixed σ is the spread of every value of the truncated sets: sets of one shadow still give
    it many values, so it stays applicable where the per-example spread is not."""
    rng = np.random.default_rng(5)
    keep = np.argsort(rng.random((4, 30)), axis=0) < 2
    scores = rng.normal(size=(4, 30, 1)).astype(np.float32)
    names = ["lira_online", "lira_online_fixed_var"]
    result = score_attacks(scores, keep, None, names, lira_counts="reference")
    assert isinstance(result["lira_online"], NotApplicable)
    assert np.isfinite(result["lira_online_fixed_var"]).all()


def test_an_attack_model_of_one_membership_is_not_applicable():
    """Target 0's shadows (models 1 and 2) trained on every example: every training row is a member, so
    the attack classifiers cannot learn; n/a in the registry, an error from classifier_scores."""
    logits, keep, labels = small_run(num_models=3)
    keep[1:] = True
    keep[0, ::2] = False
    scores = score_attacks(
        logits[..., 0], keep, [0], ["shokri", "ml_leaks_adv1", "loss"], logits=logits, labels=labels, classifier_rows=50
    )
    for name in ("shokri", "ml_leaks_adv1"):
        assert isinstance(scores[name], NotApplicable) and "one membership only" in scores[name].reason, name
    assert scores["loss"].shape == (1, 40)
    with pytest.raises(UserError, match=r"^shokri: an attack model \(fold 0, half [01], class \d\) would be trained"):
        classifier_scores(logits, keep, labels, [0], ["shokri"], max_rows=50)
