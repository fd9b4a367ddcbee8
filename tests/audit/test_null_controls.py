"""Null controls: scores that carry no membership signal give every attack an AUC of 0.5 (± 0.01), for
balanced and Bernoulli keep matrices at M = 8, 16, 32, 64 models; attacks whose shadow sets are too small
for some example are reported not applicable instead. The figures are in docs/auditing.md."""

import numpy as np
import pytest

from lira_jax.audit.inputs.checked import NotApplicable
from lira_jax.audit.metrics import auc, roc_curve
from lira_jax.audit.registry import REGISTRY, SCORES, score_attacks
from lira_jax.shadow.data import make_keep

SCORE_ATTACKS = [name for name, attack in REGISTRY.items() if attack.needs == frozenset({SCORES})]
NUM_EXAMPLES = 4000  # with every model a target, M x 4000 (target, example) pairs: AUC spread ~0.003


def null_run(num_models: int, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(keep bool[M, N], scores float32[M, N, 2]): φ independent of membership, per-example difficulty."""
    rng = np.random.default_rng(num_models)
    keep = make_keep(num_models, NUM_EXAMPLES, seed=num_models, mode=kind)
    difficulty = rng.normal(0, 2, size=(1, NUM_EXAMPLES, 1))
    return keep, (rng.normal(size=(num_models, NUM_EXAMPLES, 2)) + difficulty).astype(np.float32)


@pytest.mark.parametrize("kind", ["balanced", "bernoulli"])
@pytest.mark.parametrize("num_models", [8, 16, 32, 64])
def test_every_attack_is_at_chance_under_the_null(num_models, kind):
    keep, scores = null_run(num_models, kind)
    results = score_attacks(scores, keep, None, SCORE_ATTACKS)
    for name, values in results.items():
        if isinstance(values, NotApplicable):
            # only where some example has fewer than 2 shadows in a set: Bernoulli keep with few models
            assert kind == "bernoulli" and num_models <= 16 and name.startswith(("lira", "bavaria")), name
            assert "needs ≥" in values.reason
            continue
        assert auc(roc_curve(keep, values)) == pytest.approx(0.5, abs=0.01), name


def test_raw_counts_show_the_balanced_keep_bias():
    """What equalised counts remove: online LiRA on raw counts at M = 16 is well below 0.5."""
    keep, scores = null_run(16, "balanced")
    raw = score_attacks(scores, keep, None, ["lira_online"], lira_counts="raw")["lira_online"]
    equalised = score_attacks(scores, keep, None, ["lira_online"])["lira_online"]
    assert auc(roc_curve(keep, raw)) < 0.48
    assert auc(roc_curve(keep, equalised)) == pytest.approx(0.5, abs=0.01)


def test_four_models_leave_every_lira_variant_not_applicable():
    """With 4 models and balanced keep every equalised set holds one shadow: no spread anywhere, so the
    fixed-σ variants are n/a too (before issue 25 they read σ = 0 floored to 1e-6 and reported a number)."""
    keep, scores = null_run(4, "balanced")
    results = score_attacks(scores, keep, None, [name for name in SCORE_ATTACKS if name.startswith("lira")])
    for name, values in results.items():
        sets = "2 IN and 2 OUT shadows" if "online" in name else "2 OUT shadows"
        if "fixed_var" in name:
            reason = f"its fixed σ needs, for each target, an example with ≥ {sets} (a set of 1 has no spread)"
        else:
            reason = f"needs ≥ {sets} per example"
        assert values == NotApplicable(reason), name
