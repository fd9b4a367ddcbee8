"""audit/attacks/classifiers.py: features against NumPy, the cross-fitting plan, signal found, and a null control."""

import numpy as np
import pytest
from scipy.special import softmax

from lira_jax.audit.attacks.classifiers import (
    CLASSIFIERS,
    classifier_scores,
    sorted_probabilities,
    training_pairs,
)
from lira_jax.audit.inputs.checked import TransferShadow
from lira_jax.audit.metrics import attack_metrics
from lira_jax.audit.streaming import subset_models
from lira_jax.errors import UserError


def logit_run(seed, num_models=8, num_examples=400, num_classes=5, signal=2.0):
    """keep bool[M, N] (each example in half of the models), labels, logits float32[M, N, 1, C]: membership
    raises the label's logit by `signal`; examples differ in difficulty."""
    rng = np.random.default_rng(seed)
    keep = np.argsort(rng.random((num_models, num_examples)), axis=0) < num_models // 2
    labels = rng.integers(0, num_classes, num_examples)
    logits = rng.normal(0, 1, size=(num_models, num_examples, 1, num_classes))
    difficulty = rng.normal(1.5, 1.5, size=num_examples)
    logits[:, np.arange(num_examples), 0, labels] += difficulty + signal * keep
    return keep, labels, logits.astype(np.float32)


def test_sorted_probabilities_match_numpy():
    logits = np.random.default_rng(0).normal(0, 3, size=(4, 2, 5))
    expected = np.sort(softmax(logits, axis=-1), axis=-1)[..., ::-1]
    np.testing.assert_allclose(sorted_probabilities(logits, 5), expected, rtol=1e-12)
    np.testing.assert_allclose(sorted_probabilities(logits, 3), expected[..., :3], rtol=1e-12)
    padded = sorted_probabilities(logits[..., :2], 3)
    np.testing.assert_allclose(padded[..., :2], np.sort(softmax(logits[..., :2], axis=-1), axis=-1)[..., ::-1])
    assert (padded[..., 2] == 0).all()


@pytest.mark.parametrize("targets", [list(range(8)), [2, 5, 6], [7]])
def test_no_attack_model_sees_its_targets_or_their_examples(targets):
    keep, labels, _ = logit_run(1)
    split, plan = training_pairs(keep, labels, targets, max_rows=300, seed=3)
    assert sorted(np.bincount(split.fold).tolist()) in ([4, 4], [1, 2], [1])
    assert abs(int((split.half == 0).sum()) - 200) <= 5  # each class split evenly: at most one off per class
    for label in range(5):
        sizes = np.bincount(split.half[labels == label], minlength=2)
        assert abs(int(sizes[0]) - int(sizes[1])) <= 1
    assert len(plan["shokri"]) == split.num_folds * 2 * 5 and len(plan["ml_leaks_adv1"]) == split.num_folds * 2
    for name, cells in plan.items():
        for fold, half, label, models, examples in cells:
            fold_targets = np.asarray(targets)[split.fold == fold]
            assert not np.isin(models, fold_targets).any(), name
            assert (split.half[examples] != half).all(), name
            assert label is None or (labels[examples] == label).all()
            assert len(set(zip(models.tolist(), examples.tolist(), strict=True))) == len(models)  # no repeats
        rows = [len(models) for *_, models, _ in cells]
        if name == "ml_leaks_adv1":
            assert all(len(np.unique(models)) == 1 for *_, models, _ in cells)  # one shadow model
            assert max(rows) <= 300
        else:  # 300 rows per (fold, half), shared out over the per-class attack models
            assert sum(rows) == split.num_folds * 2 * 300


def test_classifiers_find_the_signal_and_stream_in_chunks():
    keep, labels, logits = logit_run(2)
    scores = classifier_scores(logits, keep, labels, None, ["shokri", "ml_leaks_adv1"], max_rows=200)
    # an attack's randomness is its own: the same alone, on one thread, as alongside another on several
    again = classifier_scores(logits, keep, labels, None, ["ml_leaks_adv1"], max_rows=200, workers=1)
    np.testing.assert_array_equal(scores["ml_leaks_adv1"], again["ml_leaks_adv1"])
    for name, values in scores.items():
        assert values.dtype == np.float32 and values.shape == (8, 400)
        assert attack_metrics(keep, values)["auc"] > 0.65, name


def test_model_subsets_score_like_the_full_run():
    keep, labels, logits = logit_run(3, num_models=6, num_examples=120)
    used = [0, 1, 3, 4, 5]
    on_subset = classifier_scores(subset_models(logits, used), keep[used], labels, [4], ["ml_leaks_adv1"], max_rows=50)
    direct = classifier_scores(logits[used], keep[used], labels, [4], ["ml_leaks_adv1"], max_rows=50)
    np.testing.assert_array_equal(on_subset["ml_leaks_adv1"], direct["ml_leaks_adv1"])


def test_null_control_shuffled_membership():
    """Membership shuffled across models (logits keep their signal for the true membership): the attack
    models learn nothing that carries over, so TPR stays within the intervals of FPR. One target, so its
    (example, score) pairs are independent and the binomial intervals hold."""
    keep, labels, logits = logit_run(4, num_models=10, num_examples=5000)
    shuffled = np.random.default_rng(5).permuted(keep, axis=0)
    scores = classifier_scores(logits, shuffled, labels, [9], ["shokri", "ml_leaks_adv1"], max_rows=600)
    for name, values in scores.items():
        metrics = attack_metrics(shuffled[[9]], values)
        members, nonmembers = metrics["num_members"], metrics["num_nonmembers"]
        assert abs(metrics["auc"] - 0.5) < 4.5 * np.sqrt((members + nonmembers + 1) / (12 * members * nonmembers))
        for alpha in ("0.01", "0.001"):
            point = metrics["at_fpr"][alpha]
            (tpr_low, tpr_high), (fpr_low, fpr_high) = point["tpr_interval"], point["fpr_interval"]
            assert tpr_low <= fpr_high and fpr_low <= tpr_high, (name, alpha, point)


def test_data_transfer_from_another_data_set():
    keep, labels, logits = logit_run(6, num_models=4, num_examples=300)
    other_keep, _, other_logits = logit_run(7, num_models=2, num_examples=500, num_classes=9, signal=3.0)
    transfer = TransferShadow(other_logits, other_keep, model=1)
    scores = classifier_scores(logits, keep, labels, None, ["ml_leaks_adv2"], transfer=transfer, max_rows=500)
    assert attack_metrics(keep, scores["ml_leaks_adv2"])["auc"] > 0.6
    with pytest.raises(UserError, match="ml_leaks_adv2 .* needs a shadow model of another run"):
        classifier_scores(logits, keep, labels, None, ["ml_leaks_adv2"])


def test_bad_input():
    keep, labels, logits = logit_run(8, num_models=4, num_examples=40)
    with pytest.raises(UserError, match="unknown attack classifier"):
        classifier_scores(logits, keep, labels, names=["shokri", "vibes"])
    with pytest.raises(UserError, match="keep must be bool"):
        classifier_scores(logits, keep[:, 1:], labels)
    with pytest.raises(UserError, match="max_rows >= 2"):
        classifier_scores(logits, keep, labels, max_rows=1)
    broken = logits.copy()
    broken[1, 7, 0, 2] = np.inf
    with pytest.raises(UserError, match="logits holds NaN or infinite values \\(inf at model 1, example 7\\)"):
        classifier_scores(broken, keep, labels, names=["ml_leaks_adv1"])
    assert CLASSIFIERS == ("shokri", "ml_leaks_adv1", "ml_leaks_adv2")
