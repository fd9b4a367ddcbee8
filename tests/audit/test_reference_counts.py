"""`--lira-counts reference`: plot.py's truncated sets and fixed σ, against a plain re-implementation of plot.py
(tests/audit/plot_reference.py) on the same arrays, for every target, chunked or not."""

import json

import numpy as np
import pytest
from plot_reference import plot_semantics, plot_semantics_vectorised, truncated_sets
from run_folders import write_run
from scipy.special import log_ndtr
from sklearn.metrics import auc, roc_curve

from lira_jax.audit.attacks.lira import lira as lira_module
from lira_jax.audit.attacks.lira.lira import lira_scores
from lira_jax.audit.attacks.lira.truncation import truncation
from lira_jax.audit.evaluate import run_attack
from lira_jax.audit.metrics import attack_metrics
from lira_jax.audit.registry import score_attacks
from lira_jax.shadow.data import make_keep

COMPARED = ("lira_online", "lira_online_fixed_var", "lira_offline_two_sided")


def _arrays(kind: str, num_models: int, num_examples: int = 150, num_views: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    if kind == "balanced":
        keep = make_keep(num_models, num_examples, seed=seed)
    else:  # counts from 3 to M - 3: the truncation drops up to several shadows per example
        counts = rng.integers(3, num_models - 2, num_examples)
        keep = np.argsort(rng.random((num_models, num_examples)), axis=0) < counts
    difficulty = rng.normal(0.0, 2.0, (1, num_examples, 1))
    scores = difficulty + 0.8 * keep[:, :, None] + rng.normal(size=(num_models, num_examples, num_views))
    return scores.astype(np.float32), keep


@pytest.mark.parametrize(("kind", "num_models"), [("balanced", 8), ("balanced", 32), ("uneven", 9), ("uneven", 17)])
@pytest.mark.parametrize("chunk_examples", [None, 7])
def test_scores_equal_plot_py_for_every_target(kind, num_models, chunk_examples):
    scores, keep = _arrays(kind, num_models, seed=num_models)
    ours = lira_scores(scores, keep, None, COMPARED, counts="reference", chunk_examples=chunk_examples)
    for target in range(num_models):
        expected = plot_semantics(scores, keep, target)
        for name in COMPARED:
            np.testing.assert_allclose(ours[name][target], expected[name], rtol=2e-5, atol=2e-5, err_msg=name)


@pytest.mark.parametrize("kind", ["balanced", "uneven"])
@pytest.mark.parametrize("first_pass", [False, True])
def test_offline_fixed_sigma_is_the_spread_of_every_out_value(kind, first_pass, monkeypatch):
    """Our offline test stays one-sided; its fixed σ is plot.py's np.std of the truncated OUT lists."""
    if first_pass:  # σ from a first pass over the OUT sets, as for large problems
        monkeypatch.setattr(lira_module, "DEFERRED_BYTES", 0)
    scores, keep = _arrays(kind, 12, seed=3)
    ours = lira_scores(scores, keep, None, ["lira_offline_fixed_var", "lira_online_fixed_var"], counts="reference")
    for target in range(12):
        sets_in, sets_out = truncated_sets(scores, keep, target)
        residual = scores[target].astype(np.float64) - np.median(sets_out, axis=1)
        expected = log_ndtr(residual / np.std(sets_out)).mean(axis=1)
        np.testing.assert_allclose(ours["lira_offline_fixed_var"][target], expected, rtol=2e-5, atol=2e-5)
        online = plot_semantics(scores, keep, target)["lira_online_fixed_var"]
        np.testing.assert_allclose(ours["lira_online_fixed_var"][target], online, rtol=2e-5, atol=2e-5)


def test_the_roc_is_plot_py_s():
    """One target, plot.py's way (ntest = 1, the last model): the same ROC points and AUC."""
    scores, keep = _arrays("uneven", 24, num_examples=2000, num_views=2, seed=7)
    target = 23
    ours = score_attacks(scores, keep, [target], COMPARED, lira_counts="reference")
    for name in COMPARED:
        expected = plot_semantics(scores, keep, target)[name]
        fpr, tpr, _ = roc_curve(keep[target], expected)
        ours_fpr, ours_tpr, _ = roc_curve(keep[target], ours[name][0])
        np.testing.assert_array_equal(ours_fpr, fpr)
        np.testing.assert_array_equal(ours_tpr, tpr)
        assert attack_metrics(keep[[target]], ours[name])["auc"] == pytest.approx(auc(fpr, tpr), abs=1e-12)


@pytest.mark.parametrize("kind", ["balanced", "uneven"])
def test_the_vectorised_baseline_is_plot_py_too(kind):
    """benchmarks/score_throughput.py's faster baseline computes what the per-example one does."""
    scores, keep = _arrays(kind, 11 if kind == "uneven" else 10, seed=4)
    for target in (0, 5, len(keep) - 1):
        expected, vectorised = plot_semantics(scores, keep, target), plot_semantics_vectorised(scores, keep, target)
        for name in expected:
            np.testing.assert_allclose(vectorised[name], expected[name], rtol=1e-12, atol=1e-12, err_msg=name)


def test_sizes_are_the_smallest_counts_without_the_target():
    keep = np.array([[1, 1, 0, 1], [1, 0, 0, 1], [0, 1, 1, 1], [1, 1, 1, 0], [0, 0, 1, 0]], dtype=bool)
    sizes = truncation(keep, np.arange(5))
    for target in range(5):
        others = np.arange(5) != target
        assert sizes.size_in[target] == keep[others].sum(axis=0).min()
        assert sizes.size_out[target] == (~keep[others]).sum(axis=0).min()


def test_too_few_shadows_is_not_applicable():
    keep = np.ones((6, 40), dtype=bool)
    keep[:3, :20] = False
    keep[3:, 20:] = False
    keep[0, 0] = True  # example 0: OUT models 1 and 2 only, so targets 1 and 2 keep 1 OUT shadow
    scores = np.random.default_rng(0).normal(size=(6, 40, 1)).astype(np.float32)
    result = score_attacks(scores, keep, None, ["lira_offline", "lira_offline_fixed_var"], lira_counts="reference")
    assert "2 OUT shadows" in result["lira_offline"].reason
    assert isinstance(result["lira_offline_fixed_var"], np.ndarray)


def test_the_command_line_records_the_choice(tmp_path):
    run = write_run(tmp_path / "run", num_models=8, num_examples=200)
    metrics = run_attack(run, attacks=["lira_online"], lira_counts="reference", print_table=False)
    assert metrics["options"]["lira_counts"] == "reference"
    assert json.loads((run / "metrics.json").read_text())["options"]["lira_counts"] == "reference"
